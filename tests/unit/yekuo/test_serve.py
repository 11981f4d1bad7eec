"""`yekuo run` refuses to start without a real audit chain key, as it does without a PII key, and on a
database schema older than its code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from ground.settings import Settings
from store.audit import new_chain_key
from store.crypto import new_key
from store.database import create_engine, create_schema
from tests.support.auth import TEST_SECRET
from tests.support.migrations import made_before_migrations, migrate_to, revision_of
from yekuo import serve


@pytest.mark.parametrize(
    ("configured", "named"),
    [(None, "YEKUO_AUDIT__CHAIN_KEY"), ("c2hvcnQ=", "at least 32"), ("not base64!", "not valid base64")],
    ids=["missing", "short", "not base64"],
)
def test_yekuo_run_refuses_to_start_without_a_real_chain_key(
    configured: str | None,
    named: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("YEKUO_AUTH__JWT_SECRET", TEST_SECRET)
    monkeypatch.setenv("YEKUO_PII__KEYS", json.dumps({"k1": new_key()}))
    monkeypatch.setenv("YEKUO_DB_URL", f"sqlite:///{tmp_path}/hub.db")
    if configured is None:
        monkeypatch.delenv("YEKUO_AUDIT__CHAIN_KEY", raising=False)
    else:
        monkeypatch.setenv("YEKUO_AUDIT__CHAIN_KEY", configured)

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("yekuo run went on to open the database")

    monkeypatch.setattr(serve, "create_engine", started)
    assert serve.serve_hub(Settings()) == 1
    err = capsys.readouterr().err
    assert err.startswith("yekuo run: ") and named in err


class Started(Exception):
    """Raised where `yekuo run` goes on to load its configuration: it accepted the schema."""


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """Settings `yekuo run` accepts, and the engine of its database."""
    monkeypatch.setenv("YEKUO_AUTH__JWT_SECRET", TEST_SECRET)
    monkeypatch.setenv("YEKUO_PII__KEYS", json.dumps({"k1": new_key()}))
    monkeypatch.setenv("YEKUO_AUDIT__CHAIN_KEY", new_chain_key())
    monkeypatch.setenv("YEKUO_DB_URL", f"sqlite:///{tmp_path}/hub.db")

    def started(*args: object, **kwargs: object) -> None:
        raise Started

    monkeypatch.setattr(serve, "load_hub_config", started)
    engine = create_engine(f"sqlite:///{tmp_path}/hub.db")
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("made_at", "shown"),
    [("0001", "0001, older than the code's 0004"), (None, "no revision: made before schema migrations")],
    ids=["older revision", "made before migrations"],
)
def test_yekuo_run_refuses_to_start_on_a_schema_older_than_its_code(
    made_at: str | None, shown: str, production: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    if made_at is None:
        made_before_migrations(production, "0001")
    else:
        migrate_to(production, made_at)

    assert serve.serve_hub(Settings()) == 1

    err = capsys.readouterr().err
    assert err.startswith(f"yekuo run: the database schema is {shown}")
    assert "run `yekuo db upgrade` first, or set YEKUO_DB_AUTO_UPGRADE=true" in err
    assert revision_of(production) == made_at


def test_yekuo_run_goes_on_to_upgrade_an_older_schema_when_told_to(
    production: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    migrate_to(production, "0001")
    monkeypatch.setenv("YEKUO_DB_AUTO_UPGRADE", "true")

    with pytest.raises(Started):
        serve.serve_hub(Settings())


@pytest.mark.parametrize("state", ["empty", "head", "newer"])
def test_yekuo_run_starts_on_an_empty_current_or_newer_schema(state: str, production: Engine) -> None:
    if state != "empty":
        create_schema(production)
    if state == "newer":
        with production.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9001'")

    with pytest.raises(Started):
        serve.serve_hub(Settings())
