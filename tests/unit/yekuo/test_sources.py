"""Declared sources: the entries today's settings make, a bad entry named, and a further kind in the hub."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pydantic
import pytest
from sqlalchemy.engine import Engine

from adapters.dispatch.intake import DispatchFeed
from adapters.marketing.wiring import MarketingAdapter
from adapters.pms.source import PmsSource
from ground.errors import ConfigError
from ground.settings import (
    PROJECT_ROOT,
    DispatchSettings,
    MarketingSettings,
    PmsSettings,
    Settings,
    SourceSettings,
)
from pipeline.config import load_hub_config
from pipeline.records import RawRecord, SourceBatch, SourceParts
from workflow.grid import get_equipment
from yekuo.cli import main
from yekuo.hub import Hub
from yekuo.sources import SOURCE_KINDS, AdapterKind, build_sources, source_problems


def test_without_a_sources_list_the_per_system_settings_are_the_entries(tmp_path: Path) -> None:
    settings = Settings(
        marketing=MarketingSettings(wsdl_url="http://marketing.example/ws?wsdl", poll_interval_s=3.0),
        pms=PmsSettings(db_url=f"sqlite:///{tmp_path / 'pms.db'}", page_size=7),
        dispatch=DispatchSettings(drop_dir=tmp_path / "drop", scan_interval_s=4.0),
    )
    marketing, pms, dispatch = settings.declared_sources()
    assert (marketing.name, marketing.kind, marketing.poll_interval_s) == ("marketing", "marketing_soap", 3.0)
    assert marketing.settings["wsdl_url"] == "http://marketing.example/ws?wsdl"
    assert (pms.name, pms.kind, pms.poll_interval_s) == ("pms", "pms_db", 3.0), "PMS keeps marketing's pace"
    assert pms.settings["page_size"] == 7
    assert (dispatch.name, dispatch.kind, dispatch.poll_interval_s) == (
        "dispatch",
        "dispatch_dropfolder",
        None,
    )
    assert dispatch.settings["scan_interval_s"] == 4.0
    assert [entry.kind for entry in Settings().declared_sources()] == ["marketing_soap"]


def test_each_kind_builds_its_adapter_from_its_entry(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = Settings(
        pms=PmsSettings(db_url=f"sqlite:///{tmp_path / 'pms.db'}"),
        dispatch=DispatchSettings(drop_dir=tmp_path / "drop", progress_every_rows=9),
    )
    routes = load_hub_config(PROJECT_ROOT).routes
    marketing, pms, dispatch = build_sources(settings.declared_sources(), sqlite_engine, routes)
    assert isinstance(marketing.adapter, MarketingAdapter) and marketing.poll is marketing.adapter.source
    assert [name for name, _ in marketing.loops] == ["write:marketing"]
    assert isinstance(pms.poll, PmsSource) and pms.feed is None
    assert isinstance(dispatch.feed, DispatchFeed) and dispatch.poll is None
    assert dispatch.feed.folder.root == tmp_path / "drop" and dispatch.progress_every_rows == 9
    for parts in (marketing, pms):
        assert parts.poll is not None
        parts.poll.close()


def test_the_sources_list_comes_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "YEKUO_SOURCES",
        '[{"name": "pms", "kind": "pms_db", "settings": {"db_url": "sqlite://"}, "poll_interval_s": 5}]',
    )
    [entry] = Settings().declared_sources()
    assert (entry.name, entry.kind, entry.settings, entry.poll_interval_s) == (
        "pms",
        "pms_db",
        {"db_url": "sqlite://"},
        5.0,
    )


def test_two_entries_of_one_name_are_refused() -> None:
    twice = [SourceSettings(name="pms", kind="pms_db"), SourceSettings(name="pms", kind="pms_db")]
    with pytest.raises(pydantic.ValidationError, match="more than one entry named pms"):
        Settings(sources=twice)


def test_two_pms_databases_keep_their_own_checkpoints_and_loops(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    entries = [
        SourceSettings(name=name, kind="pms_db", settings={"db_url": f"sqlite:///{tmp_path / name}.db"})
        for name in ("pms_north", "pms_south")
    ]
    assert source_problems(entries) == []
    north, south = build_sources(entries, sqlite_engine, load_hub_config(PROJECT_ROOT).routes)
    # The source's name is its checkpoint key and the hub's loop name.
    assert [parts.name for parts in (north, south)] == ["pms_north", "pms_south"]
    assert north.poll is not None and south.poll is not None
    assert (north.poll.name, south.poll.name) == ("pms_north", "pms_south")
    north.poll.close()
    south.poll.close()


def test_a_second_marketing_or_dispatch_source_is_refused(tmp_path: Path) -> None:
    entries = [
        SourceSettings(name="marketing", kind="marketing_soap"),
        SourceSettings(name="marketing_b", kind="marketing_soap"),
        SourceSettings(name="drop_a", kind="dispatch_dropfolder", settings={"drop_dir": str(tmp_path / "a")}),
        SourceSettings(name="drop_b", kind="dispatch_dropfolder", settings={"drop_dir": str(tmp_path / "b")}),
    ]
    assert source_problems(entries) == [
        "sources[1] (marketing_b): a hub reads one marketing_soap source; this is a second one",
        "sources[3] (drop_b): a hub reads one dispatch_dropfolder source; this is a second one",
    ]


def test_a_bad_entry_is_named_with_what_is_wrong(sqlite_engine: Engine) -> None:
    entries = [
        SourceSettings(name="marketing", kind="marketing_soap"),
        SourceSettings(name="pms", kind="pms_db", settings={"page_size": 0}),
        SourceSettings(name="scada", kind="iec104"),
    ]
    assert source_problems(entries) == [
        "sources[1] (pms): pms_db setting page_size: Input should be greater than or equal to 1",
        "sources[2] (scada): unknown adapter kind 'iec104'; "
        "known kinds: dispatch_dropfolder, marketing_soap, pms_db",
    ]
    with pytest.raises(ConfigError, match=r"declared sources: sources\[1\] \(pms\)"):
        build_sources(entries, sqlite_engine, ())


def test_check_config_reports_a_bad_entry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "YEKUO_SOURCES",
        '[{"name": "dispatch", "kind": "dispatch_dropfolder", "settings": {"scan_interval_s": 0}}]',
    )
    assert main(["check-config", "--config-dir", str(PROJECT_ROOT)]) == 1
    err = capsys.readouterr().err
    assert (
        "sources[0] (dispatch): dispatch_dropfolder setting scan_interval_s: Input should be greater" in err
    )


def test_check_config_reports_an_entry_the_settings_cannot_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("YEKUO_SOURCES", '[{"kind": "pms_db"}]')
    assert main(["check-config", "--config-dir", str(PROJECT_ROOT)]) == 1
    assert "settings sources.0.name: Field required" in capsys.readouterr().err


# A further legacy system: its adapter (a settings model, a polling source and a factory), a mapping and a
# route, and nothing else.
TELEMETRY_MAPPING = """\
mapping: telemetry/station
description: a station the telemetry front end reports
source: {system: telemetry, record: station}
target: Substation
fields:
  substation_id: {from: ID, required: true}
  name: {from: NAME, required: true}
  status: {constant: in_service}
  source_refs:
    template: [{system: telemetry, record_type: station, key: "{ID}"}]
"""
TELEMETRY_ROUTES = """\
routes:
  - name: telemetry-station
    description: a station from the telemetry front end
    source: {system: telemetry, record: station}
    mapping: telemetry/station
    event_type: cn.yekuo.grid.substation.changed.v1
    exchange: yekuo.events
    routing_key: "grid.substation.changed"
    subject: "{substation_id}"
    on_invalid: park
"""


class TelemetrySettings(pydantic.BaseModel):
    stations: dict[str, str]


class TelemetrySource:
    """Reports its stations once, then nothing new."""

    name = "telemetry"

    def __init__(self, stations: Mapping[str, str]) -> None:
        self._stations = dict(stations)
        self.closed = False

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        if checkpoint:
            return SourceBatch([], checkpoint, has_more=False)
        records = [
            RawRecord("telemetry", "station", key, {"ID": key, "NAME": name})
            for key, name in self._stations.items()
        ]
        return SourceBatch(records, {"reported": True}, has_more=False)

    def close(self) -> None:
        self.closed = True


def telemetry_parts(entry: SourceSettings, engine: Engine, routes: Any) -> SourceParts:
    settings = TelemetrySettings.model_validate(entry.settings)
    return SourceParts(
        entry.name, poll=TelemetrySource(settings.stations), idle_s=entry.poll_interval_s or 0.05
    )


def _config_with_telemetry(root: Path) -> Path:
    shutil.copytree(
        PROJECT_ROOT / "mappings", root / "mappings", ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    (root / "routes").mkdir()
    for routes in (PROJECT_ROOT / "routes").glob("*.yaml"):
        shutil.copy(routes, root / "routes" / routes.name)
    (root / "mappings" / "telemetry").mkdir()
    (root / "mappings" / "telemetry" / "station.yaml").write_text(TELEMETRY_MAPPING, encoding="utf-8")
    (root / "routes" / "telemetry.yaml").write_text(TELEMETRY_ROUTES, encoding="utf-8")
    return root


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_further_kind_runs_through_the_same_hub_loop(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = Settings(
        bus_url=f"memory://{uuid.uuid4()}",
        config_dir=_config_with_telemetry(tmp_path / "config"),
        sources=[
            SourceSettings(
                name="telemetry", kind="telemetry_front_end", settings={"stations": {"ST0001": "白河变"}}
            )
        ],
    )
    kinds = {**SOURCE_KINDS, "telemetry_front_end": AdapterKind(TelemetrySettings, telemetry_parts)}
    hub = Hub(settings, engine=sqlite_engine, kinds=kinds)
    [parts] = hub.sources
    hub.start()
    try:

        def projected() -> bool:
            with sqlite_engine.connect() as conn:
                return get_equipment(conn, "substation", "ST0001") is not None

        _wait(projected, "the telemetry station in the grid projection")
    finally:
        hub.stop()
    with sqlite_engine.connect() as conn:
        station = get_equipment(conn, "substation", "ST0001")
    assert station is not None and station["name"] == "白河变"
    assert hub.health["poll:telemetry"].ok
    assert isinstance(parts.poll, TelemetrySource) and parts.poll.closed
