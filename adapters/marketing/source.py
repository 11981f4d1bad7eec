"""Polls the marketing system for changed applications and the customers they reference, as raw records,
and stages the records the marketing system pushed (the push inbox) in the same single stream.

Record versions are deduplicated before staging. A version is staged only when it is newer than every
version of that application staged before, so push and poll together never stage one version twice or
an older version after a newer one (which would move a case backwards). What was staged is known exactly
from the checkpoint, committed with the events: the watermark covers what the listing staged (a listed
version at or before the watermark was staged, or a newer one was), and push_seq the pushes taken.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import zeep
from sqlalchemy.engine import Engine

from adapters.marketing.client import MarketingClient, Watermark
from ground.errors import ConfigError, MalformedInputError, SourceUnavailableError
from pipeline.records import RawRecord, SourceBatch
from store.submissions import PushedRecord, newest_pushed, pushes_after

SYSTEM = "marketing"

logger = logging.getLogger(__name__)


def _position(application: dict[str, Any], index: int) -> Watermark:
    changed_at, key = application.get("UPDATE_TIME"), application.get("APP_NO")
    if not isinstance(changed_at, str) or not isinstance(key, str):
        raise MalformedInputError(
            f"marketing application #{index} of the page lacks UPDATE_TIME or APP_NO: "
            f"UPDATE_TIME={changed_at!r}, APP_NO={key!r}"
        )
    try:
        return Watermark(changed_at=changed_at, key=key)
    except MalformedInputError as exc:
        raise MalformedInputError(f"marketing application {key} (#{index} of the page): {exc}") from exc


def _order(watermark: Watermark) -> tuple[str, str]:
    return (watermark.changed_at, watermark.key)


@dataclass(frozen=True)
class MarketingCheckpoint:
    """The marketing source's checkpoint: the listing's watermark and the last push taken from the inbox."""

    watermark: Watermark | None = None
    push_seq: int = 0

    def to_dict(self, *, with_push: bool) -> dict[str, Any]:
        """The stored JSON form: the watermark's fields, and push_seq when the source takes pushes."""
        stored: dict[str, Any] = self.watermark.to_dict() if self.watermark else {}
        if with_push:
            stored["push_seq"] = self.push_seq
        return stored

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MarketingCheckpoint:
        """Read the stored form back (None or {}: the beginning); MalformedInputError names a bad field."""
        if not data:
            return cls()
        push_seq = data.get("push_seq", 0)
        if not isinstance(push_seq, int) or isinstance(push_seq, bool) or push_seq < 0:
            raise MalformedInputError(f"marketing checkpoint push_seq must be a count, got {push_seq!r}")
        has_watermark = "changed_at" in data or "key" in data
        return cls(Watermark.from_dict(data) if has_watermark else None, push_seq)


@dataclass
class SourceStats:
    """What the source has done since it started."""

    polls: int = 0
    listed: int = 0
    pushes_taken: int = 0
    staged_versions: int = 0
    dropped_versions: int = 0
    last_listing_error: str | None = None
    by_reason: dict[str, int] = field(default_factory=dict)


class _Gate:
    """Admits a record version when it is newer than every version of its application staged before."""

    def __init__(self, newest: Mapping[str, str], stats: SourceStats) -> None:
        self._newest = dict(newest)
        self._stats = stats

    def admit(self, app_no: str, update_time: str, stale_reason: str) -> bool:
        known = self._newest.get(app_no)
        if known is not None and update_time <= known:
            self.drop("same version" if update_time == known else stale_reason)
            return False
        self._newest[app_no] = update_time
        self._stats.staged_versions += 1
        return True

    def drop(self, reason: str) -> None:
        """Count a version left out, by why."""
        self._stats.dropped_versions += 1
        self._stats.by_reason[reason] = self._stats.by_reason.get(reason, 0) + 1


class MarketingSource:
    """The marketing system as a polling source, plus its push inbox when given the hub's engine.

    Each poll takes either the waiting pushes (up to push_batch, and reports more to come) or one page of
    changed applications. The checkpoint is MarketingCheckpoint in its dict form; None or an empty mapping
    reads from the beginning. The source stores nothing: the caller commits the records and the returned
    checkpoint in one transaction, and only one poller may run per hub database.
    A page yields the customers its applications reference first (each once, fetched in batches), then the
    applications, so a customer is known before an application that points at it. A customer's position
    is that of the first application in the page that references it.
    A listing answer that cannot be read (malformed, a DTD, the wrong namespace) is reported as
    SourceUnavailableError: nothing of it can be parked, so it is read again later, with backoff.
    """

    name = SYSTEM

    def __init__(
        self,
        wsdl_url: str,
        *,
        page_size: int = 200,
        timeout_s: float = 10.0,
        transport: zeep.Transport | None = None,
        endpoint_url: str | None = None,
        client: MarketingClient | None = None,
        engine: Engine | None = None,
        push_batch: int = 500,
    ) -> None:
        if page_size < 1:
            raise ConfigError(f"marketing page size must be at least 1, got {page_size}")
        if push_batch < 1:
            raise ConfigError(f"marketing push batch must be at least 1, got {push_batch}")
        self.page_size = page_size
        self.push_batch = push_batch
        self.engine = engine
        self.client = client or MarketingClient(
            wsdl_url, transport=transport, timeout_s=timeout_s, endpoint_url=endpoint_url
        )
        self.stats = SourceStats()

    def close(self) -> None:
        """Release the SOAP client's connections."""
        self.client.close()

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        """The waiting pushes, or else the page of applications changed after the checkpoint."""
        state = MarketingCheckpoint.from_dict(checkpoint)
        self.stats.polls += 1
        if self.engine is not None:
            with self.engine.connect() as conn:
                pushes = pushes_after(conn, state.push_seq, self.push_batch)
                newest = newest_pushed(conn, {push.app_no for push in pushes}, state.push_seq)
            if pushes:
                return self._push_batch(state, pushes, newest)
        try:
            return self._listing_batch(state)
        except MalformedInputError as exc:
            self.stats.last_listing_error = str(exc)
            raise SourceUnavailableError(
                f"the marketing listing answer is unusable; will read again: {exc}"
            ) from exc

    def _push_batch(
        self, state: MarketingCheckpoint, pushes: list[PushedRecord], newest: Mapping[str, str]
    ) -> SourceBatch:
        gate = _Gate(newest, self.stats)
        records: list[RawRecord] = []
        for push in pushes:
            self.stats.pushes_taken += 1
            version = (push.update_time, push.app_no)
            if state.watermark is not None and version <= _order(state.watermark):
                # The listing has passed this position: it staged this version or a newer one.
                gate.drop("listed already")
                continue
            if not gate.admit(push.app_no, push.update_time, "older than a staged push"):
                continue
            position = {
                "push_seq": push.seq,
                "via": push.via,
                "changed_at": push.update_time,
                "key": push.app_no,
            }
            if push.customer and push.customer.get("CONS_NO"):
                records.append(
                    RawRecord(SYSTEM, "customer", str(push.customer["CONS_NO"]), push.customer, position)
                )
            records.append(RawRecord(SYSTEM, "application", push.app_no, push.application, position))
        following = replace(state, push_seq=pushes[-1].seq)
        return SourceBatch(records=records, checkpoint=following.to_dict(with_push=True), has_more=True)

    def _listing_batch(self, state: MarketingCheckpoint) -> SourceBatch:
        page = self.client.list_changed_applications(state.watermark, self.page_size)
        positions = [_position(application, index) for index, application in enumerate(page.applications)]
        self.stats.listed += len(positions)
        newest: Mapping[str, str] = {}
        if self.engine is not None and positions:
            with self.engine.connect() as conn:
                newest = newest_pushed(conn, {position.key for position in positions}, state.push_seq)
        gate = _Gate(newest, self.stats)
        admitted = [
            (application, position)
            for application, position in zip(page.applications, positions, strict=True)
            if gate.admit(position.key, position.changed_at, "older than a staged push")
        ]
        first_reference: dict[str, Watermark] = {}
        for application, position in admitted:
            cons_no = application.get("CONS_NO")
            if cons_no:
                first_reference.setdefault(cons_no, position)
        customers = self.client.get_customers(list(first_reference))
        missing = set(first_reference) - {customer.get("CONS_NO") for customer in customers}
        if missing:
            logger.warning(
                "marketing system does not know customers %s referenced by changed applications",
                sorted(missing),
            )
        records = [
            RawRecord(
                system=SYSTEM,
                record_type="customer",
                key=customer["CONS_NO"],
                payload=customer,
                position=first_reference[customer["CONS_NO"]].to_dict(),
            )
            for customer in customers
            if customer.get("CONS_NO") in first_reference
        ]
        records.extend(
            RawRecord(
                system=SYSTEM,
                record_type="application",
                key=position.key,
                payload=application,
                position=position.to_dict(),
            )
            for application, position in admitted
        )
        watermark = max(
            [*positions, *([state.watermark] if state.watermark else [])], key=_order, default=None
        )
        following = replace(state, watermark=watermark)
        self.stats.last_listing_error = None
        return SourceBatch(
            records=records,
            checkpoint=following.to_dict(with_push=self.engine is not None),
            has_more=page.has_more,
        )
