"""The marketing adapter's status for operators: circuit, watermark, push inbox, outbound queues, loops."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from adapters.marketing.client import LEGACY_TIME_FORMAT, MarketingClient
from adapters.marketing.outbound import LEGACY_ZONE
from adapters.marketing.source import SYSTEM, MarketingCheckpoint, MarketingSource
from adapters.marketing.writer import MarketingWriter
from store.checkpoints import load_checkpoint
from store.database import utcnow
from store.submissions import marketing_writebacks, push_counts, status_counts, submissions


class MarketingStatus:
    """Reports on the marketing adapter of a running hub (or, without its objects, from the database alone).

    loops returns the hub's loop health by loop name; the loops of this adapter are those whose name ends
    in ':marketing'.
    """

    def __init__(
        self,
        *,
        client: MarketingClient | None = None,
        source: MarketingSource | None = None,
        writer: MarketingWriter | None = None,
        loops: Callable[[], Mapping[str, Any]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client or (source.client if source is not None else None)
        self.source = source
        self.writer = writer
        self._loops = loops
        self._clock = clock

    def __call__(self, conn: Connection) -> dict[str, Any]:
        checkpoint = MarketingCheckpoint.from_dict(load_checkpoint(conn, SYSTEM))
        received, waiting = push_counts(conn, checkpoint.push_seq)
        report: dict[str, Any] = {
            "name": SYSTEM,
            "available": None,
            "circuit": None,
            "watermark": checkpoint.watermark.to_dict() if checkpoint.watermark else None,
            "watermark_age_s": None,
            "push_inbox": {"received": received, "waiting": waiting, "taken_up_to": checkpoint.push_seq},
            "submissions": status_counts(conn, submissions),
            "writebacks": status_counts(conn, marketing_writebacks),
            "loops": {},
        }
        if checkpoint.watermark is not None:
            changed = datetime.strptime(checkpoint.watermark.changed_at, LEGACY_TIME_FORMAT)
            age = self._clock() - changed.replace(tzinfo=LEGACY_ZONE)
            report["watermark_age_s"] = round(age.total_seconds(), 1)
        if self.client is not None:
            circuit = self.client.breaker.status()
            report["available"] = circuit.available
            report["circuit"] = circuit.as_dict()
        if self.source is not None:
            report["source"] = asdict(self.source.stats)
        if self.writer is not None:
            report["writer"] = asdict(self.writer.stats)
        if self._loops is not None:
            report["loops"] = {
                name: {
                    "ok": getattr(health, "ok", None),
                    "failures": getattr(health, "failures", None),
                    "last_error": getattr(health, "last_error", None),
                }
                for name, health in self._loops().items()
                if name.endswith(f":{SYSTEM}")
            }
        return report
