"""The published row versions in the hub database: applied, looked up, walked in key order, cleared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from adapters.pms.registry import RowRegistry


def _in(hub: Engine, write: Callable[..., None], *args: Any) -> None:
    with hub.begin() as conn:
        write(conn, *args)


def test_versions_are_applied_replaced_and_removed(hub: Engine) -> None:
    registry = RowRegistry(hub, "pms")
    _in(
        hub,
        registry.apply,
        {"transformer": {"A": ("v1", "2026-11-26 10:00:00"), "B": ("v1", None)}, "feeder": {}},
    )
    _in(
        hub,
        registry.apply,
        {"transformer": {"A": ("v2", "2026-11-26 10:00:05"), "B": None, "C": ("v1", None)}},
    )
    assert registry.versions("transformer", ["A", "B", "C", "D"]) == {"A": "v2", "C": "v1"}
    assert registry.page("transformer", None, 10) == [("A", "2026-11-26 10:00:05"), ("C", None)]


def test_applying_the_same_versions_twice_changes_nothing(hub: Engine) -> None:
    registry = RowRegistry(hub, "pms")
    pending = {"transformer": {key: (f"v-{key}", None) for key in ("A", "B")}}
    _in(hub, registry.apply, pending)
    _in(hub, registry.apply, pending)
    assert registry.versions("transformer", ["A", "B"]) == {"A": "v-A", "B": "v-B"}


def test_pages_walk_the_keys_in_order_and_sources_do_not_mix(hub: Engine) -> None:
    registry = RowRegistry(hub, "pms")
    _in(hub, registry.apply, {"transformer": {f"K{n:04d}": ("v", None) for n in range(1200)}})
    _in(hub, RowRegistry(hub, "other").apply, {"transformer": {"K0000": ("x", None)}})
    seen: list[str] = []
    after = None
    while page := registry.page("transformer", after, 500):
        seen += [key for key, _ in page]
        after = page[-1][0]
    assert seen == [f"K{n:04d}" for n in range(1200)]
    assert len(registry.versions("transformer", seen)) == 1200


def test_clearing_forgets_one_record_type_or_every_one(hub: Engine) -> None:
    registry = RowRegistry(hub, "pms")
    _in(hub, registry.apply, {"transformer": {"A": ("v", None)}, "feeder": {"F": ("v", None)}})
    _in(hub, registry.clear, ["feeder"])
    assert registry.versions("feeder", ["F"]) == {}
    assert registry.versions("transformer", ["A"]) == {"A": "v"}
    _in(hub, registry.clear)
    assert registry.versions("transformer", ["A"]) == {}
