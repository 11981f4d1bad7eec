"""`yekuo run` refuses to start without a real audit chain key, as it does without a PII key, and on a
database schema older than its code; `yekuo api` refuses the same, and serves from its worker processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from ground.settings import PROJECT_ROOT, Settings, available_cores
from store.audit import new_chain_key
from store.crypto import Keyring, new_key
from store.database import create_engine, create_schema
from tests.support.auth import TEST_SECRET, bearer
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
    [("0001", "0001, older than the code's 0007"), (None, "no revision: made before schema migrations")],
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


def test_the_api_serves_from_as_many_processes_as_the_cores_unless_told() -> None:
    assert Settings().api_workers == min(available_cores(), 4) >= 1
    assert Settings(api_workers=3).api_workers == 3
    with pytest.raises(ValidationError):
        Settings(api_workers=0)


@pytest.mark.parametrize(
    ("workers", "per_client", "per_application", "questions"), [(1, 10, 5, 30), (3, 4, 2, 10), (20, 1, 1, 2)]
)
def test_each_api_process_gets_its_share_of_the_guessing_limits(
    production: Engine,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    per_client: int,
    per_application: int,
    questions: int,
) -> None:
    monkeypatch.setenv("YEKUO_API_WORKERS", str(workers))

    context = serve.api_app().state.api_context

    assert context.progress.per_client.limit == per_client
    assert context.progress.per_application.limit == per_application
    assert context.assistant.per_client.limit == questions


@pytest.mark.parametrize(
    ("cpu_max", "allowed"),
    [
        ("max 100000\n", None),
        ("150000 100000\n", 1),
        ("50000 100000\n", 1),
        ("200000 100000\n", 2),
        ("", None),
    ],
    ids=["no quota", "one and a half", "half", "two", "unreadable"],
)
def test_the_cores_count_a_containers_cpu_quota(tmp_path: Path, cpu_max: str, allowed: int | None) -> None:
    quota = tmp_path / "cpu.max"
    quota.write_text(cpu_max)
    cores = available_cores(tmp_path / "absent")

    assert available_cores(quota) == (cores if allowed is None else min(cores, allowed))


def test_an_api_process_keeps_a_small_database_pool(
    production: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pools: list[tuple[int, int]] = []

    def recorded(url: str, *, keyring: Keyring, pool_size: int, max_overflow: int) -> Engine:
        pools.append((pool_size, max_overflow))
        return create_engine(url, keyring=keyring)

    monkeypatch.setattr(serve, "create_engine", recorded)
    serve.api_app()

    assert pools == [(2, 3)]
    server_engine = create_engine("postgresql+psycopg://hub@127.0.0.1:1/hub", pool_size=2, max_overflow=3)
    assert server_engine.pool.size() == 2


def test_yekuo_api_refuses_to_start_without_a_real_pii_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("YEKUO_AUTH__JWT_SECRET", TEST_SECRET)
    monkeypatch.delenv("YEKUO_PII__KEYS", raising=False)
    monkeypatch.setenv("YEKUO_AUDIT__CHAIN_KEY", new_chain_key())
    monkeypatch.setenv("YEKUO_DB_URL", f"sqlite:///{tmp_path}/hub.db")

    assert serve.serve_api(Settings()) == 1
    err = capsys.readouterr().err
    assert err.startswith("yekuo api: ") and "YEKUO_PII__KEYS" in err


def test_yekuo_api_refuses_a_schema_older_than_its_code(
    production: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate_to(production, "0001")

    assert serve.serve_api(Settings()) == 1
    assert "run `yekuo db upgrade` first" in capsys.readouterr().err


def _workers_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the process tree from Linux's /proc")
def test_yekuo_api_serves_from_its_worker_processes_and_stops_them_all_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    engine = create_engine(url)
    create_schema(engine)
    engine.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {
        **os.environ,
        "YEKUO_DB_URL": url,
        "YEKUO_API_PORT": str(port),
        "YEKUO_AUTH__JWT_SECRET": TEST_SECRET,
        "YEKUO_PII__KEYS": json.dumps({"k1": new_key()}),
        "YEKUO_AUDIT__CHAIN_KEY": new_chain_key(),
    }
    command = [sys.executable, "-m", "yekuo.cli", "api", "--workers", "2"]
    process = subprocess.Popen(command, env=environment, cwd=PROJECT_ROOT, stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().decode().startswith(f"hub API on 127.0.0.1:{port} from 2 processes")
        base = f"http://127.0.0.1:{port}"
        headers = bearer("viewer")
        answers = []
        for _ in range(600):
            try:
                answers = [httpx2.get(f"{base}/v1/applications", headers=headers) for _ in range(20)]
                break
            except httpx2.TransportError:
                time.sleep(0.1)
        workers = _workers_of(process.pid)
        assert [answer.status_code for answer in answers] == [200] * 20
        assert answers[0].json() == {"items": [], "limit": 50, "next_cursor": None}
        assert len(workers) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        if process.stdout is not None:
            process.stdout.close()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_yekuo_api_exits_1_on_settings_its_app_cannot_be_built_with(tmp_path: Path, workers: str) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    engine = create_engine(url)
    create_schema(engine)
    engine.dispose()
    environment = {
        **os.environ,
        "YEKUO_DB_URL": url,
        "YEKUO_API_PORT": "0",
        "YEKUO_AUTH__JWT_SECRET": TEST_SECRET,
        "YEKUO_PII__KEYS": json.dumps({"k1": new_key()}),
        "YEKUO_AUDIT__CHAIN_KEY": new_chain_key(),
        "YEKUO_ASSISTANT__PROVINCE": "atlantis",
    }
    command = [sys.executable, "-m", "yekuo.cli", "api", "--workers", workers]

    done = subprocess.run(command, env=environment, cwd=PROJECT_ROOT, capture_output=True, timeout=120)

    assert done.returncode == 1
    assert done.stderr.decode().startswith("yekuo api: ") and "atlantis" in done.stderr.decode()
    assert b"hub API on" not in done.stdout


def test_the_supervisor_stops_and_reports_a_process_that_could_not_build_its_app(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    environment = {
        **os.environ,
        "YEKUO_DB_URL": url,
        "YEKUO_AUTH__JWT_SECRET": TEST_SECRET,
        "YEKUO_PII__KEYS": json.dumps({"k1": new_key()}),
        "YEKUO_AUDIT__CHAIN_KEY": new_chain_key(),
        "YEKUO_ASSISTANT__PROVINCE": "atlantis",
    }
    # The supervisor alone, without the parent's own build that `yekuo api` does first.
    script = (
        "import sys; from ground.webserver import bind_socket, serve_workers; "
        "sys.exit(0 if serve_workers('yekuo.serve:api_app', bind_socket('127.0.0.1', 0), 2) else 1)"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, cwd=PROJECT_ROOT, capture_output=True, timeout=120
    )

    assert done.returncode == 1
    assert "yekuo api: " in done.stderr.decode() and "atlantis" in done.stderr.decode()
