"""API latency with many cases stored: GET /v1/applications/{no} and a filtered list, at a steady rate.

Cases are made by the workflow handler itself (workflow.cases.handle_event) from seeded marketing
applications, each moved through its flow's stages over the last year (seed_cases), then cloned in SQL up
to the wanted count: the handler rebuilds a case in about a dozen statements, which at its rate would take
most of the run for 100,000 cases. Every table with an application_no column is cloned row for row under
new application numbers, so each clone has the same shape (timeline, stage visits, events, figures) as the
case it was made from.

The API is served as deployed, by `yekuo api` with its worker processes, over the benchmark's schema with
credentials and keys made for the run; the load comes from another process (bench.load), open-loop at a
fixed rate. The statements a request sends are counted apart, on an app in this process over the same
database, because the serving processes' statements are out of this process's sight.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import httpx2
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection, Engine

from api.app import create_app
from bench.credentials import bench_credentials
from bench.load import LoadResult, run_load
from bench.records import envelope
from bench.statements import counting_statements
from canonical_model.application import ConnectionApplication
from canonical_model.envelope import CloudEvent
from ground.errors import ConfigError
from ground.settings import PROJECT_ROOT, AuthSettings
from pipeline.decoded import DecodedEvent
from pipeline.records import RawRecord
from pipeline.routing import Router
from store.audit import new_chain_key
from store.crypto import Keyring, new_key
from store.database import utcnow
from store.schema import metadata
from workflow.cases import handle_event
from workflow.config import Flow, WorkflowConfig
from yekuo.consumers import CONSUMERS

SEED_BATCH = 200
# The seeded applications are submitted over the last year; one in ten goes back a stage once.
LIFE_DAYS = 365
REWORK_SHARE = 0.1
LIST_PATH = "/v1/applications"
# An operator's question: non-residential low-voltage applications of one supply unit, first page.
LIST_QUERY = "customer_class=lv_non_residential&unit=41401&limit=50"
# Cloned application numbers start with 27 (the world's start in 26), so they never collide with seeds.
_CLONE_PREFIX = "27"
# Requests whose statements are counted, on an app in this process, before each endpoint's load.
STATEMENT_SAMPLE = 50
# Each worker spends seconds of CPU building its app (the assistant's knowledge index among it); on a machine
# busy with other work its start has taken a minute.
_START_TIMEOUT_S = 300.0
_SETTLE_S = 0.5


@dataclass(frozen=True)
class EndpointLatency:
    """What one endpoint did under the load."""

    path: str
    load: LoadResult
    statements_per_request: float
    server_cpu_s: float


def seed_cases(
    engine: Engine, router: Router, records: Sequence[RawRecord], *, config: WorkflowConfig, seed: int = 31
) -> list[str]:
    """Apply the records' applications through the workflow handler, each with a life; return the numbers.

    Each application is submitted on a day of the last LIFE_DAYS and moves through its flow's stages, one
    event per stage, each stage taking between a third and one and a half of its limit; one in ten goes
    back once for rework. Stages due after now are not reached, so the recent cases are in progress and the
    older ones energised: the process figures and the overview count a realistic mix, not only cases first
    seen mid-flow.
    """
    rng = random.Random(seed)
    now = utcnow()
    numbers = []
    lives: list[list[CloudEvent]] = []
    for record in records:
        if record.record_type != "application":
            continue
        for routed in router.route(record):
            application = ConnectionApplication.model_validate(routed.data)
            flow = config.flow_for(application)
            submitted = now - timedelta(days=rng.uniform(1, LIFE_DAYS))
            stages = _life(flow, submitted, now, rng)
            lives.append(
                [
                    envelope(
                        routed,
                        sequence,
                        str(uuid.uuid4()),
                        {
                            **routed.data,
                            "stage": stage,
                            "submitted_at": submitted.isoformat(),
                            "updated_at": moment.isoformat(),
                        },
                    )
                    for sequence, (stage, moment) in enumerate(stages, start=1)
                ]
            )
            numbers.append(routed.subject)
    for start in range(0, len(lives), SEED_BATCH):
        with engine.begin() as conn:
            for events in lives[start : start + SEED_BATCH]:
                for event in events:
                    handle_event(conn, DecodedEvent(event))
    return numbers


def _life(flow: Flow, submitted: datetime, now: datetime, rng: random.Random) -> list[tuple[str, datetime]]:
    """The stages an application reached by now, with when it entered each."""
    steps = list(flow.steps)
    path = [step.stage for step in steps]
    if rng.random() < REWORK_SHARE and len(path) > 2:
        back = rng.randrange(1, len(path) - 1)
        path = [*path[: back + 1], path[back - 1], *path[back:]]
    limits = {step.stage: step.limit_days or 1 for step in steps}
    moment = submitted
    reached = []
    for stage in path:
        if moment > now:
            break
        reached.append((stage, moment))
        # Limits count working days: five of them take about seven calendar days.
        moment += timedelta(days=limits[stage] * rng.uniform(1 / 3, 1.5) * 7 / 5)
    return reached


def clone_numbers(count: int) -> list[str]:
    """count application numbers of the legacy length (13 digits) that no seeded world uses."""
    return [f"{_CLONE_PREFIX}{index:011d}" for index in range(1, count + 1)]


def clone_expression(table: sa.Table, column: sa.Column[object]) -> str | None:
    """The SELECT expression that makes the clone's value of a column; None leaves it to its default."""
    name = f't."{column.name}"'
    if column.name == "application_no":
        return "c.dst"
    if column is table.autoincrement_column:
        return None
    unique_alone = column.unique or any(
        isinstance(constraint, sa.UniqueConstraint) and list(constraint.columns) == [column]
        for constraint in table.constraints
    )
    if column.primary_key or unique_alone:
        return "gen_random_uuid()::text"
    if isinstance(column.type, sa.JSON):
        # Documents carry the application number as a JSON string; the clone carries its own.
        return f"""replace({name}::text, '"' || c.src || '"', '"' || c.dst || '"')::json"""
    return name


def clone_cases(conn: Connection, sources: Sequence[str], targets: Sequence[str]) -> None:
    """Copy every row about each source case to a new case, targets[i] cloning sources[i % len(sources)]."""
    conn.execute(sa.text("CREATE TEMPORARY TABLE bench_clone (src text, dst text) ON COMMIT DROP"))
    driver = conn.connection.driver_connection
    if driver is None:
        raise ConfigError("cloning cases needs an open database connection")
    cursor = driver.cursor()
    with cursor.copy("COPY bench_clone (src, dst) FROM STDIN") as copy:
        for index, target in enumerate(targets):
            copy.write_row((sources[index % len(sources)], target))
    for table in metadata.sorted_tables:
        if "application_no" not in table.c:
            continue
        columns = [(column.name, clone_expression(table, column)) for column in table.c]
        kept = [(name, expression) for name, expression in columns if expression is not None]
        names = ", ".join(f'"{name}"' for name, _ in kept)
        expressions = ", ".join(expression for _, expression in kept)
        conn.execute(
            sa.text(
                f'INSERT INTO "{table.name}" ({names}) SELECT {expressions} '
                f'FROM "{table.name}" t JOIN bench_clone c ON t.application_no = c.src'
            )
        )
    for table in metadata.sorted_tables:
        if "application_no" in table.c:
            conn.execute(sa.text(f'ANALYZE "{table.name}"'))


def has_list_endpoint(app: FastAPI) -> bool:
    """Whether the API documents GET /v1/applications (the filtered list)."""
    return "get" in app.openapi().get("paths", {}).get(LIST_PATH, {})


def measure_api(
    engine: Engine,
    database_url: str,
    keys: ServingKeys,
    numbers: Sequence[str],
    *,
    rate: float,
    duration_s: float,
    workers: int,
    seed: int = 3,
) -> tuple[EndpointLatency, EndpointLatency | None]:
    """Latency of single-case reads over random stored numbers, then of the filtered list if it exists,
    from `yekuo api` with this many workers over database_url (the database engine reaches, sealed with
    keys.pii)."""
    credentials = bench_credentials()
    app = create_app(engine, auth=credentials.auth, consumers=CONSUMERS)
    sample = random.Random(seed).sample(list(numbers), min(len(numbers), int(rate * (duration_s + 1))))
    single_paths = [f"{LIST_PATH}/{number}" for number in sample]
    list_path = f"{LIST_PATH}?{LIST_QUERY}"
    with (
        ServedApi(database_url, credentials.auth, keys, workers=workers) as server,
        ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool,
    ):
        measure = functools.partial(
            _measure, engine, app, server, pool, rate, duration_s, credentials.headers
        )
        single = measure(f"GET {LIST_PATH}/{{no}}", single_paths)
        if not has_list_endpoint(app):
            return single, None
        return single, measure(f"GET {list_path}", [list_path])


def _measure(
    engine: Engine,
    app: FastAPI,
    server: ServedApi,
    pool: ProcessPoolExecutor,
    rate: float,
    duration_s: float,
    headers: dict[str, str],
    name: str,
    paths: Sequence[str],
) -> EndpointLatency:
    counted = paths[:STATEMENT_SAMPLE]
    with TestClient(app, headers=headers) as client, counting_statements(engine) as statements:
        for path in counted:
            client.get(path)
    cpu_before = server.cpu_s()
    load = pool.submit(run_load, server.base_url, paths, rate, duration_s, headers=headers).result()
    return EndpointLatency(name, load, statements.per(len(counted)), server.cpu_s() - cpu_before)


@dataclass(frozen=True)
class ServingKeys:
    """The keys the served API opens personal data and keys audit entries with, base64 as the settings
    take them."""

    pii_key_id: str
    pii_key: str
    chain_key: str

    @classmethod
    def fresh(cls) -> ServingKeys:
        """New random keys; nothing outlives the run."""
        return cls("bench", new_key(), new_chain_key())

    def keyring(self) -> Keyring:
        """The keyring the benchmark's own engine must seal the seeded cases with."""
        return Keyring.from_encoded({self.pii_key_id: self.pii_key}, self.pii_key_id)


class ServedApi:
    """`yekuo api` in a process group of its own, on a free port of 127.0.0.1, until the block ends."""

    def __init__(self, database_url: str, auth: AuthSettings, keys: ServingKeys, *, workers: int) -> None:
        port = _free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.workers = workers
        secret = auth.jwt_secret.get_secret_value() if auth.jwt_secret is not None else ""
        self._environment = {
            **os.environ,
            "YEKUO_DB_URL": database_url,
            "YEKUO_API_HOST": "127.0.0.1",
            "YEKUO_API_PORT": str(port),
            "YEKUO_API_WORKERS": str(workers),
            "YEKUO_AUTH__JWT_SECRET": secret,
            "YEKUO_AUTH__API_KEYS": json.dumps([key.model_dump() for key in auth.api_keys]),
            "YEKUO_PII__KEYS": json.dumps({keys.pii_key_id: keys.pii_key}),
            "YEKUO_AUDIT__CHAIN_KEY": keys.chain_key,
        }
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServedApi:
        # The `yekuo` command as a module of this tree, which the installed script may not point at.
        command = [sys.executable, "-m", "yekuo.cli", "api"]
        self._process = subprocess.Popen(
            command, env=self._environment, cwd=PROJECT_ROOT, start_new_session=True
        )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline and self._process.poll() is None:
            if self._answers() and self._settled():
                return self
            time.sleep(0.2)
        self.__exit__(None, None, None)
        raise ConfigError(f"yekuo api did not answer on {self.base_url} within {_START_TIMEOUT_S:.0f} s")

    def _answers(self) -> bool:
        try:
            return httpx2.get(f"{self.base_url}/health", timeout=1.0).status_code == 200
        except httpx2.HTTPError:
            return False

    def _settled(self) -> bool:
        """Whether every worker has built its app: the first to answer may do so while others still import,
        and a measurement must not share the cores with that."""
        before = self.cpu_s()
        time.sleep(_SETTLE_S)
        return self.cpu_s() - before < _SETTLE_S * 0.1

    def __exit__(self, *_exc: object) -> None:
        if self._process is None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(_START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def cpu_s(self) -> float:
        """CPU seconds the serving processes have used so far, the supervisor and its workers together."""
        if self._process is None:
            return 0.0
        return sum(_cpu_s(pid) for pid in [self._process.pid, *_descendants(self._process.pid)])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _descendants(pid: int) -> list[int]:
    """The processes below pid, from Linux's /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = [int(child) for child in task.read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process, from /proc/<pid>/stat; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
