"""Hub tables of measured load: dispatch file intake state, and the load projection the API reads.

dispatch_files holds one row per distinct file content (its SHA-256) that was published. The intake writes
it in the same transaction as the file's events, so a file dropped again with the same content is
recognised and not published twice, by any hub process, even after a crash between commit and clean-up.
dispatch_file_log records the outcome of every file the intake finished (published, duplicate, error), with
the encoding it was read as and whether the file declared it or the intake detected it.

load_profiles holds the latest LoadProfile per equipment, day, phase and measuring system, with its peak
over good points and the index of the point it was at; power_factor_curves the latest power-factor curve
per equipment, day, phase and measuring system, as its good values; load_measurements the telemetry values
per measurement point and time.

The factor at a day's peak is joined when read (power_factors_at), not copied onto the profile, so a load
curve and its factor curve give the same basis whichever is stored first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ground import clock
from store.schema import KEY, UtcDateTime, metadata

SHA256 = sa.String(64)

dispatch_files = sa.Table(
    "dispatch_files",
    metadata,
    sa.Column("sha256", SHA256, primary_key=True, comment="content hash, the duplicate key"),
    sa.Column("file_name", KEY, nullable=False, comment="name the file arrived under"),
    sa.Column("stored_name", KEY, nullable=False, comment="name in the drop folder's done/"),
    sa.Column("format", sa.String(8), nullable=False, comment="cime | csv"),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("worker", KEY, nullable=False, comment="host:pid of the hub process that published it"),
    sa.Column("published_at", UtcDateTime(), nullable=False),
)

dispatch_file_log = sa.Table(
    "dispatch_file_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("sha256", SHA256, nullable=True, comment="None when the file was refused before hashing"),
    sa.Column("file_name", KEY, nullable=False),
    sa.Column("stored_name", KEY, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False, comment="published | duplicate | error"),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.BigInteger, nullable=False, comment="data rows read, broken ones included"),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("invalid", sa.BigInteger, nullable=False, comment="rows parked on the invalid channel"),
    sa.Column("skipped", sa.BigInteger, nullable=False, comment="rows of record types without a route"),
    sa.Column(
        "encoding", sa.String(16), nullable=True, comment="UTF-8 | GBK | GB18030 | ASCII; None: unread"
    ),
    sa.Column("encoding_source", sa.String(16), nullable=True, comment="declared | bom | detected"),
    sa.Column("encoding_declared", sa.String(32), nullable=True, comment="the Code= the file declared"),
    sa.Column("worker", KEY, nullable=False),
    sa.Column("finished_at", UtcDateTime(), nullable=False),
    sa.Index("ix_dispatch_file_log_sha256", "sha256", "id"),
)

load_profiles = sa.Table(
    "load_profiles",
    metadata,
    sa.Column("equipment_id", KEY, primary_key=True),
    sa.Column("data_date", sa.Date, primary_key=True),
    sa.Column("phase", sa.String(16), primary_key=True),
    sa.Column("source", sa.String(16), primary_key=True, comment="dispatch | metering"),
    sa.Column("equipment_name", sa.String(255), nullable=True),
    sa.Column("peak_kw", sa.Float, nullable=True, comment="highest good point; NULL when none is good"),
    sa.Column(
        "peak_point", sa.Integer, nullable=True, comment="index 0-95 of that point; NULL when none is good"
    ),
    sa.Column("good_points", sa.Integer, nullable=False),
    sa.Column("document", sa.JSON, nullable=False, comment="latest canonical LoadProfile"),
    sa.Column("event_source", KEY, nullable=False, comment="CloudEvent source of the applied event"),
    sa.Column("sequence", sa.BigInteger, nullable=False, comment="its per-subject sequence"),
    sa.Column("event_id", KEY, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_load_profiles_date", "data_date", "equipment_id"),
    # The feasibility load basis sums up a year of days per candidate from this index alone, never the rows.
    sa.Index("ix_load_profiles_basis", "equipment_id", "phase", "data_date", "good_points", "peak_kw"),
)

power_factor_curves = sa.Table(
    "power_factor_curves",
    metadata,
    sa.Column("equipment_id", KEY, primary_key=True),
    sa.Column("data_date", sa.Date, primary_key=True),
    sa.Column("phase", sa.String(16), primary_key=True),
    sa.Column("source", sa.String(16), primary_key=True, comment="dispatch | metering"),
    sa.Column("equipment_name", sa.String(255), nullable=True),
    sa.Column("factors", sa.JSON, nullable=False, comment="96 factors, null where missing or flagged"),
    sa.Column("good_points", sa.Integer, nullable=False),
    sa.Column("event_source", KEY, nullable=False, comment="CloudEvent source of the applied event"),
    sa.Column("sequence", sa.BigInteger, nullable=False, comment="its per-subject sequence"),
    sa.Column("event_id", KEY, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

load_measurements = sa.Table(
    "load_measurements",
    metadata,
    sa.Column("measurement_id", KEY, primary_key=True),
    sa.Column("measured_at", UtcDateTime(), primary_key=True),
    sa.Column("equipment_id", KEY, nullable=False),
    sa.Column("load_kw", sa.Float, nullable=True),
    sa.Column("quality", sa.Integer, nullable=True),
    sa.Column("good", sa.Boolean, nullable=False),
    sa.Column("event_id", KEY, nullable=False),
    sa.Index("ix_load_measurements_equipment", "equipment_id", "measured_at"),
)


@dataclass(frozen=True)
class FileOutcome:
    """What the intake did with one file.

    encoding: what the file was read as (UTF-8, GBK, GB18030, or ASCII when undeclared and ASCII only);
    encoding_source: declared, bom or detected; encoding_declared: the Code= the file declared. All None
    when the file was not read (too large, a duplicate, empty).
    """

    file_name: str
    stored_name: str
    outcome: str
    sha256: str | None
    size_bytes: int
    rows: int = 0
    events: int = 0
    invalid: int = 0
    skipped: int = 0
    reason: str | None = None
    encoding: str | None = None
    encoding_source: str | None = None
    encoding_declared: str | None = None


def _now() -> datetime:
    return clock.now()


def record_published(conn: Connection, outcome: FileOutcome, *, file_format: str, worker: str) -> None:
    """Claim the file's content hash inside the transaction of its events.

    Raises sqlalchemy's IntegrityError when the hash is already published (or being published by
    another hub process that commits first): the caller rolls back and treats the file as a duplicate.
    """
    assert outcome.sha256 is not None
    conn.execute(
        dispatch_files.insert().values(
            sha256=outcome.sha256,
            file_name=outcome.file_name,
            stored_name=outcome.stored_name,
            format=file_format,
            size_bytes=outcome.size_bytes,
            worker=worker,
            published_at=_now(),
        )
    )


def log_outcome(conn: Connection, outcome: FileOutcome, *, worker: str) -> None:
    """Append a file's outcome to the intake log."""
    conn.execute(
        dispatch_file_log.insert().values(
            sha256=outcome.sha256,
            file_name=outcome.file_name,
            stored_name=outcome.stored_name,
            outcome=outcome.outcome,
            reason=outcome.reason,
            size_bytes=outcome.size_bytes,
            rows=outcome.rows,
            events=outcome.events,
            invalid=outcome.invalid,
            skipped=outcome.skipped,
            encoding=outcome.encoding,
            encoding_source=outcome.encoding_source,
            encoding_declared=outcome.encoding_declared,
            worker=worker,
            finished_at=_now(),
        )
    )


def published_file(conn: Connection, sha256: str) -> dict[str, Any] | None:
    """The published file with this content hash, or None."""
    row = conn.execute(sa.select(dispatch_files).where(dispatch_files.c.sha256 == sha256)).first()
    return dict(row._mapping) if row is not None else None


def file_history(conn: Connection, sha256: str) -> list[dict[str, Any]]:
    """Every logged outcome of files with this content hash, oldest first."""
    query = sa.select(dispatch_file_log).where(dispatch_file_log.c.sha256 == sha256)
    return [dict(row._mapping) for row in conn.execute(query.order_by(dispatch_file_log.c.id))]


def upsert_profile(
    conn: Connection,
    document: dict[str, Any],
    *,
    peak_kw: float | None,
    peak_point: int | None,
    good_points: int,
    event_source: str,
    sequence: int,
    event_id: str,
) -> bool:
    """Store a profile unless the stored one came later from the same event source; return if stored."""
    key = {
        "equipment_id": document["equipment_id"],
        "data_date": date.fromisoformat(document["data_date"]),
        "phase": document.get("phase", "total"),
        "source": document["source"],
    }
    values = {
        "equipment_name": document.get("equipment_name"),
        "peak_kw": peak_kw,
        "peak_point": peak_point,
        "good_points": good_points,
        "document": document,
    }
    return _upsert_latest(conn, load_profiles, key, values, event_source, sequence, event_id)


@dataclass(frozen=True)
class FactorCurve:
    """A day's power factors as the basis reads them: 96 values, None where a point is not good."""

    equipment_id: str
    data_date: date
    phase: str
    source: str
    factors: Sequence[float | None]
    equipment_name: str | None = None

    @property
    def good_points(self) -> int:
        """How many points have a usable factor."""
        return sum(1 for factor in self.factors if factor is not None)


def upsert_power_factors(
    conn: Connection, curve: FactorCurve, *, event_source: str, sequence: int, event_id: str
) -> bool:
    """Store a factor curve unless the stored one came later from the same event source; return if stored."""
    key = {
        "equipment_id": curve.equipment_id,
        "data_date": curve.data_date,
        "phase": curve.phase,
        "source": curve.source,
    }
    values = {
        "equipment_name": curve.equipment_name,
        "factors": list(curve.factors),
        "good_points": curve.good_points,
    }
    return _upsert_latest(conn, power_factor_curves, key, values, event_source, sequence, event_id)


def _upsert_latest(
    conn: Connection,
    table: sa.Table,
    key: dict[str, Any],
    values: dict[str, Any],
    event_source: str,
    sequence: int,
    event_id: str,
) -> bool:
    where = sa.and_(*(table.c[column] == value for column, value in key.items()))
    stored = conn.execute(sa.select(table.c.event_source, table.c.sequence).where(where)).first()
    if stored is not None and stored.event_source == event_source and stored.sequence >= sequence:
        return False
    values = {
        **values,
        "event_source": event_source,
        "sequence": sequence,
        "event_id": event_id,
        "updated_at": _now(),
    }
    if stored is None:
        conn.execute(table.insert().values(**key, **values))
    else:
        conn.execute(table.update().where(where).values(**values))
    return True


@dataclass(frozen=True)
class PeakPoint:
    """Where an equipment's load basis peaked: the day, the measuring system and the point's index."""

    equipment_id: str
    data_date: date
    source: str
    point: int


def power_factors_at(conn: Connection, peaks: Collection[PeakPoint], *, phase: str) -> dict[str, float]:
    """The good power factor at each peak point, by equipment id; equipment without one is left out.

    One query for all peaks. A factor curve of the peak's own measuring system is preferred; another
    system's curve of the same equipment and day stands in where it has a good value at the point.
    """
    if not peaks:
        return {}
    table = power_factor_curves
    days = {(peak.equipment_id, peak.data_date) for peak in peaks}
    # Two plain IN lists rather than one of (id, day) pairs: SQLite finds the rows of a pair list by scanning.
    rows = conn.execute(
        sa.select(table.c.equipment_id, table.c.data_date, table.c.source, table.c.factors).where(
            table.c.equipment_id.in_(sorted({day[0] for day in days})),
            table.c.data_date.in_(sorted({day[1] for day in days})),
            table.c.phase == phase,
        )
    ).all()
    curves: dict[tuple[str, date], list[Any]] = {}
    for row in rows:
        if (row.equipment_id, row.data_date) in days:
            curves.setdefault((row.equipment_id, row.data_date), []).append(row)
    found: dict[str, float] = {}
    for peak in peaks:
        candidates = sorted(
            curves.get((peak.equipment_id, peak.data_date), []), key=lambda row: row.source != peak.source
        )
        for row in candidates:
            factor = row.factors[peak.point] if 0 <= peak.point < len(row.factors) else None
            if factor is not None:
                found[peak.equipment_id] = float(factor)
                break
    return found


def upsert_measurement(conn: Connection, values: dict[str, Any]) -> None:
    """Store a telemetry value, replacing one of the same point and time."""
    where = sa.and_(
        load_measurements.c.measurement_id == values["measurement_id"],
        load_measurements.c.measured_at == values["measured_at"],
    )
    updated = conn.execute(load_measurements.update().where(where).values(**values))
    if updated.rowcount == 0:
        conn.execute(load_measurements.insert().values(**values))


@dataclass(frozen=True)
class ProfileFilter:
    """Which profiles a listing returns; None means any. Dates are inclusive."""

    equipment_id: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    source: str | None = None
    phase: str | None = None


ProfileKey = tuple[date, str, str, str]


def list_profiles(
    conn: Connection, where: ProfileFilter, *, limit: int, after: ProfileKey | None = None
) -> tuple[list[dict[str, Any]], ProfileKey | None]:
    """One page of profiles ordered by day, equipment, phase and source, and the key to continue after."""
    table = load_profiles
    order = (table.c.data_date, table.c.equipment_id, table.c.phase, table.c.source)
    query = sa.select(table)
    if where.equipment_id is not None:
        query = query.where(table.c.equipment_id == where.equipment_id)
    if where.date_from is not None:
        query = query.where(table.c.data_date >= where.date_from)
    if where.date_to is not None:
        query = query.where(table.c.data_date <= where.date_to)
    if where.source is not None:
        query = query.where(table.c.source == where.source)
    if where.phase is not None:
        query = query.where(table.c.phase == where.phase)
    if after is not None:
        bounds = (sa.literal(part, type_=column.type) for column, part in zip(order, after, strict=True))
        query = query.where(sa.tuple_(*order) > sa.tuple_(*bounds))
    rows = conn.execute(query.order_by(*order).limit(limit + 1)).all()
    items = [{**row.document, "peak_kw": row.peak_kw, "good_points": row.good_points} for row in rows[:limit]]
    following: ProfileKey | None = None
    if len(rows) > limit:
        last = rows[limit - 1]
        following = (last.data_date, last.equipment_id, last.phase, last.source)
    return items, following
