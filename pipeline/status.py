"""What a running hub reports of itself: its loops' health and the counts an operator wants at a glance."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoopHealth:
    """Whether a loop's last step succeeded, and the last transient error it met."""

    ok: bool = True
    failures: int = 0
    last_error: str | None = None


@dataclass
class HubStatus:
    """Counts an operator (or the demo summary) wants at a glance."""

    cases: int
    published: int
    pending: int
    rejected: int
    records: int
    loops: dict[str, LoopHealth] = field(default_factory=dict)
