"""The PMS adapter's checkpoint: per table its read positions and passes, plus the row versions just sent.

The checkpoint is JSON in the hub's checkpoints table, committed with the events of the poll that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ground.errors import ConfigError

FORMAT = 1

# Row versions sent in one poll, per record type: key -> (version, changed-at text), or None for a deletion.
Pending = dict[str, dict[str, tuple[str, str | None] | None]]


@dataclass(frozen=True)
class Position:
    """A keyset position (changed_at, key); key None means "every row from changed_at on"."""

    at: datetime | None = None
    key: str | None = None

    def to_json(self) -> list[str | None]:
        return [self.at.isoformat() if self.at else None, self.key]

    @classmethod
    def from_json(cls, value: Any) -> Position:
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError(f"a position is [changed_at, key], not {value!r}")
        at, key = value
        if (at is not None and not isinstance(at, str)) or (key is not None and not isinstance(key, str)):
            raise ValueError(f"a position holds text or null, not {value!r}")
        return cls(datetime.fromisoformat(at) if at else None, key)


@dataclass
class TableState:
    """Where the polling of one table stands.

    phase "nulls" reads the rows without a changed-at value in key order, then phase "changes" reads the
    others in (changed_at, key) order from `main`. `joined` is the position in the joined table.
    A rescan starts both phases over; a reconciliation pass walks the sent keys after `reconcile_after`.
    """

    phase: str = "nulls"
    main: Position = field(default_factory=Position)
    joined: Position = field(default_factory=Position)
    main_caught_up: bool = False
    joined_caught_up: bool = False
    scan_started: datetime | None = None
    reconciling: bool = False
    reconcile_after: str | None = None
    reconcile_started: datetime | None = None

    @property
    def caught_up(self) -> bool:
        """Every row of the table and of its joined table has been read at least once since the pass began."""
        return self.phase == "changes" and self.main_caught_up and self.joined_caught_up

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "main": self.main.to_json(),
            "joined": self.joined.to_json(),
            "main_caught_up": self.main_caught_up,
            "joined_caught_up": self.joined_caught_up,
            "scan_started": _time(self.scan_started),
            "reconciling": self.reconciling,
            "reconcile_after": self.reconcile_after,
            "reconcile_started": _time(self.reconcile_started),
        }

    @classmethod
    def from_json(cls, value: Any) -> TableState:
        if not isinstance(value, dict):
            raise ValueError(f"a table state is an object, not {value!r}")
        phase = value.get("phase")
        if phase not in ("nulls", "changes"):
            raise ValueError(f"unknown phase {phase!r}")
        after = value.get("reconcile_after")
        if after is not None and not isinstance(after, str):
            raise ValueError(f"reconcile_after is a key, not {after!r}")
        return cls(
            phase=phase,
            main=Position.from_json(value.get("main")),
            joined=Position.from_json(value.get("joined")),
            main_caught_up=bool(value.get("main_caught_up")),
            joined_caught_up=bool(value.get("joined_caught_up")),
            scan_started=_parse_time(value.get("scan_started")),
            reconciling=bool(value.get("reconciling")),
            reconcile_after=after,
            reconcile_started=_parse_time(value.get("reconcile_started")),
        )


@dataclass
class SyncState:
    """The whole checkpoint: every table's state and the row versions of the last poll."""

    tables: dict[str, TableState] = field(default_factory=dict)
    pending: Pending = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "tables": {name: state.to_json() for name, state in self.tables.items()},
            "pending": {
                record: {key: list(entry) if entry else None for key, entry in entries.items()}
                for record, entries in self.pending.items()
                if entries
            },
        }

    @classmethod
    def from_checkpoint(cls, source: str, checkpoint: Mapping[str, Any] | None) -> SyncState:
        """The state in a committed checkpoint (None or empty: a fresh start); ConfigError if unreadable."""
        if not checkpoint:
            return cls()
        try:
            if checkpoint.get("format") != FORMAT:
                raise ValueError(f"format {checkpoint.get('format')!r} is not {FORMAT}")
            tables = checkpoint.get("tables")
            pending = checkpoint.get("pending")
            if not isinstance(tables, dict) or not isinstance(pending, dict):
                raise ValueError("'tables' and 'pending' must be objects")
            return cls(
                tables={str(name): TableState.from_json(state) for name, state in tables.items()},
                pending={str(record): _pending(entries) for record, entries in pending.items()},
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"the checkpoint of source {source!r} is not a PMS checkpoint ({exc}); "
                "delete it to synchronise from the beginning"
            ) from exc


def settled(checkpoint: Mapping[str, Any] | None, source: str = "pms") -> bool:
    """Whether a committed PMS checkpoint has read every table up to now and has no pass in progress."""
    if not checkpoint:
        return False
    state = SyncState.from_checkpoint(source, checkpoint)
    return bool(state.tables) and all(t.caught_up and not t.reconciling for t in state.tables.values())


def _pending(entries: Any) -> dict[str, tuple[str, str | None] | None]:
    if not isinstance(entries, dict):
        raise ValueError(f"pending versions are an object, not {entries!r}")
    out: dict[str, tuple[str, str | None] | None] = {}
    for key, entry in entries.items():
        if entry is None:
            out[str(key)] = None
        elif isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str):
            out[str(key)] = (entry[0], entry[1] if isinstance(entry[1], str) else None)
        else:
            raise ValueError(f"pending version of {key!r} is [version, changed_at] or null, not {entry!r}")
    return out


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"a time is ISO text, not {value!r}")
    return datetime.fromisoformat(value)
