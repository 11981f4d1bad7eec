"""The lease keeper: this instance's hold on the duties that run once per cluster (store/leases.py).

The keeper's own loop renews every held lease and takes the free or expired ones, once every third of the
lease time. A singleton step runs only while its duty is held here; otherwise it idles. The keeper counts a
lease as lost as soon as this instance's clock passes the expiry of its last renewal, without asking the
database: an instance that cannot reach the database stops its duties on time. A step that nevertheless
writes after a successor took over is refused by the fence check in its transaction (FencedOutError): the
step gives the lease up locally and waits for it again, which is no failure of the loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from ground import clock
from ground.errors import FencedOutError
from store.database import DatabaseError
from store.leases import Fence, bounded_waits, release_lease, renew_lease, take_lease

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Held:
    fence: Fence
    expires_at: datetime


class LeaseKeeper:
    """Takes and renews the leases of the duties added to it, for the instance named owner."""

    def __init__(self, engine: Engine, owner: str, ttl_s: float, duties: Iterable[str] = ()) -> None:
        self._engine = engine
        self.owner = owner
        self._ttl = timedelta(seconds=ttl_s)
        # How long one duty's statement may wait for a lock held by another transaction (a paused holder's
        # fenced write, say) before the keeper leaves that duty for the next round and goes on with the
        # others: small against the lease time, so a blocked duty cannot make the others' leases run out.
        self._wait_s = ttl_s / 15
        self._duties: list[str] = []
        # Replaced whole, never changed in place, so the loops read it without the lock; every change
        # (the keeper's thread renewing, a loop's step giving a lease up) is made under the lock.
        self._held: dict[str, _Held] = {}
        self._changing = threading.Lock()
        for duty in duties:
            self.add(duty)

    @property
    def interval_s(self) -> float:
        """The pause between two rounds of keep()."""
        return self._ttl.total_seconds() / 3

    def add(self, duty: str) -> None:
        """Compete for duty from the next round on."""
        if duty not in self._duties:
            self._duties.append(duty)

    def keep(self) -> bool:
        """One round: renew what is held, take what is free. False, so that a hub loop pauses after it."""
        for duty in self._duties:
            try:
                self._keep(duty)
            except DatabaseError as exc:
                # A lock wait that timed out, or the database down: not this round, for this duty only.
                # The lease runs out here at its expiry (fence()), as it does for the other instances.
                log.warning("lease of %s: not kept this round, trying again next round: %s", duty, exc)
        return False

    def fence(self, duty: str) -> Fence | None:
        """The duty's fence while this instance holds it and its lease has not expired by the clock."""
        held = self._held.get(duty)
        if held is None or clock.now() >= held.expires_at:
            return None
        return held.fence

    def holds(self, duty: str) -> bool:
        """Whether this instance holds the duty now (a long step asks between its chunks)."""
        return self.fence(duty) is not None

    def held(self) -> list[Fence]:
        """The leases this instance holds now."""
        return [fence for duty in self._duties if (fence := self.fence(duty)) is not None]

    def lost(self, fence: Fence) -> None:
        """Forget a lease a fence check refused; the keeper competes for the duty again next round."""
        with self._changing:
            held = self._held.get(fence.duty)
            if held is not None and held.fence == fence:
                self._replace(fence.duty, None)

    def release_all(self) -> None:
        """Give every held lease up, so that another instance takes it over without waiting for expiry."""
        for duty, held in list(self._held.items()):
            try:
                with self._engine.begin() as conn:
                    release_lease(conn, held.fence, self.owner)
            except DatabaseError as exc:
                log.warning("lease of %s not released, it expires instead: %s", duty, exc)
            self._set(duty, None)

    def singleton(self, duty: str, step: Callable[[Fence], bool]) -> Callable[[], bool]:
        """A loop step running step with the duty's fence while the duty is held here; idle otherwise."""
        self.add(duty)

        def run() -> bool:
            fence = self.fence(duty)
            if fence is None:
                return False
            try:
                return step(fence)
            except FencedOutError as exc:
                self.lost(fence)
                log.warning("%s: another instance took the duty over, waiting for it again: %s", duty, exc)
                return False

        return run

    def _keep(self, duty: str) -> None:
        held = self._held.get(duty)
        # Counted from before the statement, so this instance gives a lease up no later than the table does.
        expires_at = clock.now() + self._ttl
        if held is not None:
            with self._engine.begin() as conn, bounded_waits(conn, self._wait_s):
                renewed = renew_lease(conn, held.fence, self.owner, self._ttl)
            if renewed:
                self._set(duty, _Held(held.fence, expires_at))
                return
            log.warning("%s: lease with token %d lost to another instance", duty, held.fence.token)
            self._set(duty, None)
        with self._engine.begin() as conn, bounded_waits(conn, self._wait_s):
            fence = take_lease(conn, duty, self.owner, self._ttl)
        if fence is not None:
            self._set(duty, _Held(fence, expires_at))
            log.info("%s: lease taken with token %d", duty, fence.token)

    def _set(self, duty: str, held: _Held | None) -> None:
        with self._changing:
            self._replace(duty, held)

    def _replace(self, duty: str, held: _Held | None) -> None:
        following = {name: value for name, value in self._held.items() if name != duty}
        if held is not None:
            following[duty] = held
        self._held = following
