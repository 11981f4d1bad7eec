"""`yekuo audit anchor|verify|new-key` and the hub's anchor loop: anchors go to the file with the hub
clock's time, only for a chain that verifies; verify exits 1 naming a truncation, a rollback, a wrong key
or a broken anchor file."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from ground import clock
from ground.settings import AuditSettings
from store.anchors import latest_anchor
from store.audit import (
    CHAIN_SEQUENCE,
    append_entry,
    audit_log,
    bind_chain_key,
    chain_key_from_settings,
    list_entries,
    new_chain_key,
)
from store.schema import subject_sequences
from yekuo.audit import AnchorLoop
from yekuo.cli import main


@dataclass(frozen=True)
class AuditedHub:
    engine: Engine
    url: str
    anchors: Path
    settings: AuditSettings


@pytest.fixture
def hub(sqlite_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditedHub]:
    key = new_chain_key()
    anchors = tmp_path / "anchors" / "audit.jsonl"
    monkeypatch.setenv("YEKUO_AUDIT__CHAIN_KEY", key)
    monkeypatch.setenv("YEKUO_AUDIT__ANCHOR_PATH", str(anchors))
    settings = AuditSettings(chain_key=SecretStr(key), anchor_path=anchors, anchor_interval_s=60)
    bind_chain_key(sqlite_engine, chain_key_from_settings(settings))
    yield AuditedHub(
        sqlite_engine, sqlite_engine.url.render_as_string(hide_password=False), anchors, settings
    )


def chain_of(engine: Engine, entries: int, first: int = 1) -> None:
    with engine.begin() as conn:
        for number in range(first, first + entries):
            append_entry(
                conn, actor="op-li", action="test.step", subject=f"thing/{number}", detail={"n": number}
            )


def roll_back_to(engine: Engine, last: int) -> None:
    with engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.id > last))
        conn.execute(
            subject_sequences.update()
            .where(subject_sequences.c.subject_key == CHAIN_SEQUENCE)
            .values(last_sequence=last)
        )


def anchor_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_anchor_writes_the_head_with_the_hub_clock_and_verify_checks_it(
    hub: AuditedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    chain_of(hub.engine, 3)
    with clock.frozen_at(clock.now().replace(microsecond=0)) as frozen:
        assert main(["audit", "anchor", "--db-url", hub.url]) == 0
    with hub.engine.connect() as conn:
        head = list_entries(conn)[-1]

    assert "anchored entry 3" in capsys.readouterr().out
    assert anchor_lines(hub.anchors) == [
        {"sequence": 3, "hash": head.hash, "at": frozen.now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    ]
    assert main(["audit", "verify", "--db-url", hub.url]) == 0
    printed = capsys.readouterr()
    assert "audit chain intact: 3 entries" in printed.out
    assert "matches the latest anchor: entry 3" in printed.out and printed.err == ""


def test_verify_exits_1_on_truncation_with_rollback_and_anchor_refuses_to_bless_it(
    hub: AuditedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    chain_of(hub.engine, 4)
    assert main(["audit", "anchor", "--db-url", hub.url]) == 0
    roll_back_to(hub.engine, 2)
    capsys.readouterr()

    assert main(["audit", "verify", "--db-url", hub.url]) == 1
    err = capsys.readouterr().err
    assert "audit chain BROKEN at entry 3: the chain was truncated and rolled back" in err
    assert "entries 3..4 were deleted" in err
    assert main(["audit", "anchor", "--db-url", hub.url]) == 1
    assert "no anchor written" in capsys.readouterr().err
    assert [line["sequence"] for line in anchor_lines(hub.anchors)] == [4]


def test_verify_without_an_anchor_passes_with_a_warning(
    hub: AuditedHub, capsys: pytest.CaptureFixture[str]
) -> None:
    chain_of(hub.engine, 2)

    assert main(["audit", "verify", "--db-url", hub.url]) == 0
    printed = capsys.readouterr()
    assert "audit chain intact: 2 entries" in printed.out
    assert f"no anchor in {hub.anchors}" in printed.err and "yekuo audit anchor" in printed.err


def test_verify_exits_1_naming_a_broken_anchor_line(
    hub: AuditedHub, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain_of(hub.engine, 2)
    other = tmp_path / "elsewhere.jsonl"
    other.write_text('{"sequence": 1}\n', encoding="utf-8")

    assert main(["audit", "verify", "--db-url", hub.url, "--anchor-path", str(other)]) == 1
    err = capsys.readouterr().err
    assert f"{other}:1:" in err and "hash must be 64" in err


def test_verify_with_another_key_exits_1_and_says_so(
    hub: AuditedHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chain_of(hub.engine, 2)
    monkeypatch.setenv("YEKUO_AUDIT__CHAIN_KEY", new_chain_key())
    assert main(["audit", "verify", "--db-url", hub.url]) == 1
    assert "BROKEN at entry 1" in capsys.readouterr().err

    monkeypatch.delenv("YEKUO_AUDIT__CHAIN_KEY")
    assert main(["audit", "verify", "--db-url", hub.url]) == 1
    assert "public development key" in capsys.readouterr().err


def test_a_malformed_configured_key_is_named(
    hub: AuditedHub, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("YEKUO_AUDIT__CHAIN_KEY", "c2hvcnQ=")
    assert main(["audit", "verify", "--db-url", hub.url]) == 1
    assert "yekuo audit verify: the audit chain key is 5 bytes long" in capsys.readouterr().err


def test_new_key_prints_a_key_the_settings_accept(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "new-key"]) == 0
    printed = capsys.readouterr().out.strip()
    key = chain_key_from_settings(AuditSettings(chain_key=SecretStr(printed)), allow_development=False)
    assert len(key.secret) == 32 and not key.development


class Timer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_anchor_loop_anchors_at_start_and_then_every_interval(hub: AuditedHub) -> None:
    timer = Timer()
    loop = AnchorLoop(hub.engine, hub.settings, timer=timer)
    chain_of(hub.engine, 2)

    assert loop.step() is False
    chain_of(hub.engine, 1, first=3)
    timer.now += 59
    loop.step()
    assert [line["sequence"] for line in anchor_lines(hub.anchors)] == [2]
    timer.now += 1
    loop.step()
    assert [line["sequence"] for line in anchor_lines(hub.anchors)] == [2, 3]


def test_the_anchor_loop_logs_a_broken_chain_and_leaves_the_anchors_alone(
    hub: AuditedHub, caplog: pytest.LogCaptureFixture
) -> None:
    timer = Timer()
    loop = AnchorLoop(hub.engine, hub.settings, timer=timer)
    chain_of(hub.engine, 3)
    loop.step()
    roll_back_to(hub.engine, 1)
    timer.now += 60

    with caplog.at_level(logging.ERROR, logger="yekuo.audit"):
        assert loop.step() is False
    assert "audit chain BROKEN at entry 2, not anchored: the chain was truncated" in caplog.text
    assert latest_anchor(hub.anchors) is not None
    assert [line["sequence"] for line in anchor_lines(hub.anchors)] == [3]


def test_the_anchor_loop_survives_an_unusable_anchor_file(
    hub: AuditedHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain_of(hub.engine, 1)
    blocked = tmp_path / "a-directory"
    blocked.mkdir()
    loop = AnchorLoop(hub.engine, hub.settings.model_copy(update={"anchor_path": blocked}), timer=Timer())

    with caplog.at_level(logging.ERROR, logger="yekuo.audit"):
        assert loop.step() is False
    assert f"audit chain not anchored to {blocked}" in caplog.text
