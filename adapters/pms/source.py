"""Change capture from the PMS2.0 database by polling the tables that the route table names.

The tables, their keys and change columns come from the routes (source options table, key, changed_at,
join, deleted), so a further table takes a mapping and a route, not code.

Watermark. Each table is read in keyset pages ordered by (changed_at, key), from the position after the
last row read. Ties on changed_at are split by the key, so a burst of rows sharing one second is read
across as many pages as it needs and none is skipped. Rows with a NULL changed_at are read first, in key
order. A joined table (the GIS coordinates) has its own position: when only the joined row changes, the
main row is read again through it. The first pass reads every row with its joined row as it then is, so
the joined table is only read for changes from the start of that pass (less the overlap) on.

Overlap. A PMS transaction can commit after rows with a later changed_at were already read; a pure
watermark would skip it for good. So once a table is caught up, its position goes back to the start of
the overlap window (local time now minus overlap_s) and the window is read again at every poll. A change
that commits at most overlap_s after the changed_at it wrote is therefore seen. A periodic rescan
(rescan_interval_s) reads every row again and catches anything older (clock skew, longer transactions,
a joined row deleted on its own).

No duplicates. Re-reading must not publish a row version twice. The version of a row is a hash of its
payload as read (joined row included). The versions already published are kept in the hub database
(source_rows, one row per key); a row whose version is there is skipped. That table may only hold versions
whose events are committed, by the poller that holds the lease. So a poll writes nothing itself: it hands
the hub the versions it published (the batch's settle, also kept in the checkpoint as `pending`: only that
poll's, a few pages at most however big the tables are), and the hub writes them to source_rows in the
transaction that commits the events and the checkpoint, after the poller's fence check. A crash before the
commit leaves the old checkpoint and versions, so the same rows are read and published again; a poller
that lost its lease writes no version. Either way every row version reaches the outbox exactly once.
A checkpoint of the release before leases may carry versions not yet applied: they count as published and
are applied with the next poll's (applying a version already there changes nothing).

Deletes. Decommissioning is a status (YXZT) and arrives as a change. Hard deletes leave no trace in PMS,
so every reconcile_interval_s each table's published keys are walked page by page and looked up in PMS;
a key that is gone becomes a deletion record (the route's `deleted` record type) whose payload holds the
key, the changed-at of the last version published and DETECTED_AT, and the key leaves source_rows.

Pace and memory. A poll reads at most page_size rows per table and position, and reconcile_page_size keys
per table. It asks the hub to poll again at once while rows older than the overlap window are left, or a
reconciliation pass is running; re-reading the window waits for the next poll interval. Database errors
(outages, lock and statement timeouts, dropped connections) become SourceUnavailableError: the hub backs
off and polls again from the last committed checkpoint. The adapter only ever reads PMS.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from adapters.pms.registry import RowRegistry
from adapters.pms.state import Pending, Position, SyncState, TableState
from adapters.pms.tables import BoundTable, PolledTable, plain, polled_tables
from ground import clock as yekuo_clock
from ground.errors import ConfigError, SourceUnavailableError
from ground.settings import PmsSettings
from pipeline.records import RawRecord, SourceBatch
from routes.table import Route

SYSTEM = "pms"
DETECTED_AT = "DETECTED_AT"
_LEGACY_TIME = "%Y-%m-%d %H:%M:%S"

log = logging.getLogger(__name__)


def create_pms_engine(url: str, *, statement_timeout_s: float = 30.0) -> Engine:
    """An engine for reading PMS: bounded statement and lock waits, read-only sessions where the backend
    has them, and connections checked before use so a dropped one is replaced."""
    timeout_ms = int(statement_timeout_s * 1000)
    backend = sa.engine.make_url(url).get_backend_name()
    if backend == "sqlite":
        return sa.create_engine(url, connect_args={"timeout": statement_timeout_s})
    if backend == "postgresql":
        options = (
            f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms} "
            "-c default_transaction_read_only=on"
        )
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": options})
    engine = sa.create_engine(url, pool_pre_ping=True)
    if backend in ("mysql", "mariadb"):
        seconds = max(1, round(statement_timeout_s))

        @sa.event.listens_for(engine, "connect")
        def _limits(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(
                f"SET SESSION max_statement_time = {statement_timeout_s:.3f}, "
                f"lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}"
            )
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            cursor.close()

    return engine


@contextmanager
def pms_errors() -> Iterator[None]:
    """Turn a failure of the PMS database or the connection to it into SourceUnavailableError."""
    try:
        yield
    except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        raise SourceUnavailableError(f"PMS database unavailable: {exc}") from exc


def version_of(payload: Mapping[str, Any]) -> str:
    """The version of a row: a hash of its payload as read."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


@dataclass
class _Poll:
    """What one poll has collected so far."""

    # No checkpoint: source_rows is cleared when this poll commits, so it hides nothing now.
    fresh: bool
    # The versions of the checkpoint polled from, committed but maybe not yet in source_rows.
    carried: Pending
    records: list[RawRecord] = field(default_factory=list)
    pending: Pending = field(default_factory=dict)
    more: bool = False

    def last_version(self, record: str, key: str, published: Mapping[str, str]) -> str | None:
        """The version of a key published last, in this poll or before (None: never, or deleted)."""
        for entries in (self.pending.get(record, {}), self.carried.get(record, {})):
            if key in entries:
                entry = entries[key]
                return entry[0] if entry else None
        return published.get(key)

    def deleted_before(self, record: str, key: str) -> bool:
        """Whether the checkpoint polled from already published the key's deletion."""
        entries = self.carried.get(record, {})
        return key in entries and entries[key] is None


class PmsSource:
    """The PMS database as a polling source of raw records, one record type per polled table.

    engine: the PMS database (read access suffices); default: built from settings.db_url.
    state_engine: the hub database, where the published row versions are kept.
    clock: the hub's current time (aware); local PMS times are derived from it with settings.timezone.
    """

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        state_engine: Engine,
        engine: Engine | None = None,
        settings: PmsSettings | None = None,
        name: str = SYSTEM,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or PmsSettings()
        self.name = name
        self.tables = polled_tables(routes, SYSTEM)
        if not self.tables:
            raise ConfigError(
                f"no route polls a {SYSTEM} table (a route source needs table, key, changed_at)"
            )
        if engine is None:
            if not self.settings.db_url:
                raise ConfigError("PMS is not configured: set YEKUO_PMS__DB_URL to the PMS database URL")
            engine = create_pms_engine(
                self.settings.db_url, statement_timeout_s=self.settings.statement_timeout_s
            )
            self._owns_engine = True
        else:
            self._owns_engine = False
        self.engine = engine
        try:
            self._zone = ZoneInfo(self.settings.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown PMS time zone {self.settings.timezone!r}") from None
        self._clock = clock or yekuo_clock.now
        self.registry = RowRegistry(state_engine, name)
        self._bound: dict[str, BoundTable] = {}

    def close(self) -> None:
        """Release the PMS connections if this source opened them."""
        if self._owns_engine:
            self.engine.dispose()

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        """Read the next changes of every polled table after the committed checkpoint."""
        state = SyncState.from_checkpoint(self.name, checkpoint)
        known = {table.record_type for table in self.tables}
        gone = [record for record in state.tables if record not in known]
        for record in gone:
            del state.tables[record]
        now = self._clock()
        poll = _Poll(fresh=not checkpoint, carried=state.pending)
        with pms_errors(), self.engine.connect() as conn:
            for spec in self.tables:
                table = self._bind(conn, spec)
                table_state = state.tables.get(spec.record_type)
                if table_state is None:
                    table_state = state.tables[spec.record_type] = self._fresh(now)
                self._read(conn, table, table_state, now, poll)
        state.pending = poll.pending

        def settle(conn: Connection) -> None:
            if poll.fresh:
                # A fresh start re-publishes everything: versions from an earlier run must not hide rows.
                self.registry.clear(conn)
            elif gone:
                self.registry.clear(conn, gone)
            self.registry.apply(conn, poll.carried)
            self.registry.apply(conn, poll.pending)

        return SourceBatch(
            records=poll.records, checkpoint=state.to_json(), has_more=poll.more, settle=settle
        )

    def _bind(self, conn: Connection, spec: PolledTable) -> BoundTable:
        bound = self._bound.get(spec.record_type)
        if bound is None:
            bound = self._bound[spec.record_type] = BoundTable(spec, conn)
        return bound

    def _fresh(self, now: datetime) -> TableState:
        """The state of a table read for the first time.

        The first pass reads every row with its joined row as it is then, so the joined table only needs
        reading for changes from the start of the pass on (less the overlap), not from the beginning.
        """
        window = self._local(now) - timedelta(seconds=self.settings.overlap_s)
        return TableState(joined=Position(window, None), scan_started=now)

    def _local(self, now: datetime) -> datetime:
        return now.astimezone(self._zone).replace(tzinfo=None)

    def _read(
        self, conn: Connection, table: BoundTable, state: TableState, now: datetime, poll: _Poll
    ) -> None:
        settings = self.settings
        window = self._local(now) - timedelta(seconds=settings.overlap_s)
        since_scan = now - (state.scan_started or now)
        if (
            state.caught_up
            and not state.reconciling
            and since_scan >= timedelta(seconds=settings.rescan_interval_s)
        ):
            state.phase, state.main, state.main_caught_up = "nulls", Position(), False
            state.scan_started = now
            log.info("%s: rescanning %s", self.name, table.spec.source.table)
        self._read_main(conn, table, state, window, poll)
        if table.joined is None:
            state.joined_caught_up = True
        else:
            self._read_joined(conn, table, state, window, poll)
        if table.spec.source.deleted is not None:
            self._reconcile(conn, table, table.spec.source.deleted, state, now, poll)

    def _read_main(
        self, conn: Connection, table: BoundTable, state: TableState, window: datetime, poll: _Poll
    ) -> None:
        size = self.settings.page_size
        if state.phase == "nulls":
            rows = table.without_changed_at(conn, state.main.key, size)
            self._publish(table, rows, poll)
            if len(rows) == size:
                state.main = Position(None, table.key_of(rows[-1]))
                poll.more = True
                return
            state.phase, state.main = "changes", Position()
        rows = table.changed_since(conn, state.main, size)
        self._publish(table, rows, poll)
        end = Position(table.changed_at_of(rows[-1]), table.key_of(rows[-1])) if rows else state.main
        state.main, state.main_caught_up = _advance(end, len(rows) == size, window)
        poll.more = poll.more or not state.main_caught_up

    def _read_joined(
        self, conn: Connection, table: BoundTable, state: TableState, window: datetime, poll: _Poll
    ) -> None:
        size = self.settings.page_size
        rows = table.joined_changed_since(conn, state.joined, size)
        self._publish(table, rows, poll)
        end = table.joined_position(rows[-1]) if rows else state.joined
        state.joined, state.joined_caught_up = _advance(end, len(rows) == size, window)
        poll.more = poll.more or not state.joined_caught_up

    def _publish(self, table: BoundTable, rows: Sequence[Row[Any]], poll: _Poll) -> None:
        """Turn rows into records, leaving out every row version already published."""
        if not rows:
            return
        record = table.spec.record_type
        keys = [table.key_of(row) for row in rows]
        published = {} if poll.fresh else self.registry.versions(record, keys)
        pending = poll.pending.setdefault(record, {})
        for key, row in zip(keys, rows, strict=True):
            payload = table.payload(row)
            version = version_of(payload)
            if version == poll.last_version(record, key, published):
                continue
            changed_at = plain(table.changed_at_of(row))
            pending[key] = (version, changed_at)
            poll.records.append(
                RawRecord(
                    system=SYSTEM,
                    record_type=record,
                    key=key,
                    payload=payload,
                    position={"table": table.spec.source.table, "changed_at": changed_at, "key": key},
                )
            )

    def _reconcile(
        self,
        conn: Connection,
        table: BoundTable,
        deleted_record: str,
        state: TableState,
        now: datetime,
        poll: _Poll,
    ) -> None:
        """One page of the key-set comparison that finds rows deleted at the source."""
        interval = timedelta(seconds=self.settings.reconcile_interval_s)
        if not state.reconciling:
            due = state.reconcile_started is None or now - state.reconcile_started >= interval
            if not (state.caught_up and due):
                return
            state.reconciling, state.reconcile_after, state.reconcile_started = True, None, now
        record = table.spec.record_type
        size = self.settings.reconcile_page_size
        page = [] if poll.fresh else self.registry.page(record, state.reconcile_after, size)
        existing = table.existing(conn, [key for key, _ in page]) if page else set()
        pending = poll.pending.setdefault(record, {})
        detected = self._local(now).strftime(_LEGACY_TIME)
        for key, changed_at in page:
            if key in existing or key in pending or poll.deleted_before(record, key):
                continue
            pending[key] = None
            poll.records.append(
                RawRecord(
                    system=SYSTEM,
                    record_type=deleted_record,
                    key=key,
                    payload={
                        table.spec.source.key: key,
                        table.spec.source.changed_at: changed_at,
                        DETECTED_AT: detected,
                    },
                    position={"table": table.spec.source.table, "reconciliation": True, "key": key},
                )
            )
        if len(page) == size:
            state.reconcile_after = page[-1][0]
            poll.more = True
        else:
            state.reconciling, state.reconcile_after = False, None


def _advance(end: Position, full: bool, window: datetime) -> tuple[Position, bool]:
    """Where to read next after a page that ended at `end`, and whether everything before the window is read.

    After a full page, reading goes on from its end. After a short one every row has been read, and the
    position goes back to the start of the overlap window, to read again what may still gain late commits.
    """
    caught_up = not full or (end.at is not None and end.at >= window)
    if not full and end.at is not None and end.at > window:
        return Position(window, None), caught_up
    return end, caught_up
