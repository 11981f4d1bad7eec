"""Where the benchmark runs: broker and database URLs, its own names on both, and progress on stderr.

The benchmark shares the machine's RabbitMQ and PostgreSQL with tests and a running hub, so it keeps
to its own exchange, queues (yekuo.bench.*) and database schema, and never touches the hub's.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground.errors import ConfigError
from store.crypto import Keyring
from store.database import create_engine, create_schema, drop_schema

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BENCH_EXCHANGE = "yekuo.bench.events"
BENCH_PREFIX = "yekuo.bench"
BENCH_SCHEMA = "yekuo_bench"


@dataclass
class Progress:
    """Prints what the benchmark is doing to stderr, with the time since the run started."""

    started: float = field(default_factory=time.monotonic)

    def __call__(self, message: str) -> None:
        """One progress line."""
        print(f"[bench {time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BenchEnv:
    """The services the run measures against, and the names it may use on them."""

    amqp_url: str
    postgres_url: str
    progress: Progress
    schema: str = BENCH_SCHEMA

    @classmethod
    def from_environment(cls, progress: Progress) -> BenchEnv:
        """URLs from YEKUO_BENCH_AMQP_URL and YEKUO_BENCH_POSTGRES_URL, or the local services."""
        return cls(
            amqp_url=os.environ.get("YEKUO_BENCH_AMQP_URL", DEFAULT_AMQP_URL),
            postgres_url=os.environ.get("YEKUO_BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
            progress=progress,
        )

    @property
    def schema_url(self) -> str:
        """The database URL with the benchmark's schema as the only search path."""
        if not self.postgres_url.startswith("postgresql"):
            raise ConfigError(f"the benchmark needs PostgreSQL, not {self.postgres_url.split(':', 1)[0]}")
        separator = "&" if "?" in self.postgres_url else "?"
        return f"{self.postgres_url}{separator}options={quote(f'-csearch_path={self.schema}')}"

    def fresh_engine(self, keyring: Keyring | None = None) -> Engine:
        """An engine on the benchmark schema, with every hub table created empty; personal data sealed with
        keyring (default: as the settings say)."""
        admin = create_engine(self.postgres_url)
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
        finally:
            admin.dispose()
        engine = create_engine(self.schema_url, keyring=keyring)
        drop_schema(engine)
        create_schema(engine)
        return engine

    def drop_bench_schema(self) -> None:
        """Remove the benchmark schema and everything in it."""
        admin = create_engine(self.postgres_url)
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        finally:
            admin.dispose()

    def database_version(self) -> str:
        """The PostgreSQL server version, for the record of the run."""
        engine = create_engine(self.postgres_url)
        try:
            with engine.connect() as conn:
                return str(conn.execute(sa.text("SHOW server_version")).scalar_one())
        finally:
            engine.dispose()
