"""The yekuo command: check-config names file and line of a broken mapping; schemas export writes schemas;
db upgrade and db current bring the database's schema to the code's and show where it stands."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from ground.settings import PROJECT_ROOT, Settings
from store.database import create_engine
from tests.support.migrations import made_before_migrations, migrate_to
from tests.unit.routes.config_copy import copy_config
from yekuo.cli import main


def test_check_config_accepts_the_shipped_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config-dir", str(PROJECT_ROOT)]) == 0
    assert "is valid" in capsys.readouterr().out


def test_check_config_refuses_a_lease_time_that_is_not_positive(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("YEKUO_CLUSTER__LEASE_TTL_S", "0")
    monkeypatch.setenv("YEKUO_CLUSTER__INSTANCE_NAME", "hub-a")

    assert main(["check-config", "--config-dir", str(PROJECT_ROOT)]) == 1
    assert "settings cluster.lease_ttl_s: Input should be greater than 0" in capsys.readouterr().err


def test_the_instance_name_defaults_to_host_and_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YEKUO_CLUSTER__INSTANCE_NAME", raising=False)

    assert Settings().cluster.instance_name == f"{socket.gethostname()}-{os.getpid()}"
    monkeypatch.setenv("YEKUO_CLUSTER__INSTANCE_NAME", "hub-a")
    assert Settings().cluster.instance_name == "hub-a"


def test_check_config_names_file_and_line_of_a_broken_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = copy_config(tmp_path)
    mapping = config / "mappings" / "marketing" / "application.yaml"
    lines = mapping.read_text(encoding="utf-8").splitlines()
    broken_line = next(i for i, line in enumerate(lines) if line.strip().startswith("requested_voltage_kv:"))
    lines[broken_line] = "  requested_voltage_kv: {from: VOLT_CODE, codes: marketing/no_such_table}"
    mapping.write_text("\n".join(lines) + "\n", encoding="utf-8")

    assert main(["check-config", "--config-dir", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"mappings/marketing/application.yaml:{broken_line + 1}:" in err
    assert "no_such_table" in err


def test_check_config_reports_yaml_syntax_errors_with_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = copy_config(tmp_path)
    route = config / "routes" / "marketing.yaml"
    lines = route.read_text(encoding="utf-8").splitlines()
    lines.insert(4, "    source: [unclosed")
    route.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["check-config", "--config-dir", str(config)]) == 1
    assert "routes/marketing.yaml:" in capsys.readouterr().err


def test_schemas_export_writes_the_canonical_schemas(tmp_path: Path) -> None:
    assert main(["schemas", "export", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "application.v1.json").is_file()
    assert (tmp_path / "envelope.v1.json").is_file()


def test_db_upgrade_creates_an_empty_database_and_db_current_shows_its_revision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"

    assert main(["db", "current", "--db-url", url]) == 0
    assert capsys.readouterr().out == "database schema: no hub tables (the code's schema is 0007)\n"
    assert main(["db", "upgrade", "--db-url", url]) == 0
    assert capsys.readouterr().out == "database schema: none -> 0007 (head)\n"
    assert main(["db", "upgrade", "--db-url", url]) == 0
    assert capsys.readouterr().out == "database schema: 0007 (head); nothing to do\n"
    assert main(["db", "current", "--db-url", url]) == 0
    assert capsys.readouterr().out == "database schema: 0007 (head)\n"


def test_db_current_fails_on_an_older_schema_until_db_upgrade(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    engine = create_engine(url)
    migrate_to(engine, "0001")
    engine.dispose()

    assert main(["db", "current", "--db-url", url]) == 1
    assert capsys.readouterr().out == "database schema: 0001, older than the code's 0007\n"
    assert main(["db", "upgrade", "--db-url", url]) == 0
    assert capsys.readouterr().out == "database schema: 0001 -> 0007 (head)\n"


def test_db_upgrade_refuses_hub_tables_that_match_no_release(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    engine = create_engine(url)
    made_before_migrations(engine, "0002")
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE assistant_gaps")
    engine.dispose()

    assert main(["db", "upgrade", "--db-url", url]) == 1
    err = capsys.readouterr().err
    assert err.startswith("yekuo db upgrade: the database has hub tables but no migration history")
    assert "but not table assistant_gaps" in err
