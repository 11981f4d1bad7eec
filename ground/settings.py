"""Hub settings from the environment (prefix YEKUO_, nested with __), with embedded defaults."""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ground.identity import (
    DEFAULT_INSTANCE_URI,
    DEFAULT_NAMESPACE,
    NAMESPACE_PATTERN,
    check_instance_uri,
    namespace_problem,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A day of telemetry for a prefecture fits well within this; larger files are refused.
DEFAULT_MAX_FILE_BYTES = 256 * 1024**2
# A DNS name: dot-separated labels of letters, digits and inner hyphens (IDNs in their xn-- form).
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")


class MarketingSettings(BaseModel):
    """Where the marketing system's SOAP service is and how to talk to it."""

    wsdl_url: str = "http://127.0.0.1:8001/marketing?wsdl"
    timeout_s: float = 10.0
    page_size: int = 200
    poll_interval_s: float = 1.0
    retry_attempts: int = Field(default=3, ge=1, description="tries of a call failing for a transient reason")
    retry_initial_s: float = Field(default=0.5, ge=0, description="first backoff between tries; it doubles")
    retry_max_s: float = Field(default=5.0, ge=0, description="longest backoff between tries of one call")
    breaker_failures: int = Field(default=5, ge=1, description="failures in a row that open the circuit")
    breaker_reset_s: float = Field(default=30.0, ge=0, description="how long an open circuit refuses calls")
    wsdl_cache_path: Path | None = Field(
        default=None, description="SQLite cache of the WSDL, kept across restarts; None: in memory"
    )
    max_response_bytes: int = Field(default=16 * 1024 * 1024, ge=1024, description="larger answers: refused")
    push_batch: int = Field(default=500, ge=1, description="pushed records staged per step")
    write_initial_backoff_s: float = Field(default=2.0, ge=0, description="first wait before a write retry")
    write_max_backoff_s: float = Field(default=300.0, ge=0, description="longest wait between write retries")
    write_max_attempts: int = Field(
        default=50,
        ge=1,
        description="tries of a write failing for a transient reason before it is failed (refusals: one try)",
    )


class DeliverySettings(BaseModel):
    """How consumers retry a failing message before parking it."""

    retry_delays_ms: list[int] = Field(
        default=[1_000, 5_000, 30_000], min_length=1, description="delay before each retry; then it is parked"
    )


class PmsSettings(BaseModel):
    """The production management system's database (read-only access suffices) and how to poll it.

    db_url None means PMS is not configured. Times in PMS are local to `timezone`.
    """

    db_url: str | None = None
    page_size: int = Field(default=500, ge=1, le=10000, description="rows read per table and poll")
    overlap_s: float = Field(
        default=30.0, ge=0, description="how long after its GXSJ a PMS transaction may still commit"
    )
    reconcile_interval_s: float = Field(
        default=300.0, ge=0, description="how often the key sets are compared to find hard-deleted rows"
    )
    reconcile_page_size: int = Field(
        default=5000, ge=1, le=100000, description="keys compared per table and poll while reconciling"
    )
    rescan_interval_s: float = Field(
        default=21600.0, ge=0, description="how often every row is re-read and compared with what was sent"
    )
    statement_timeout_s: float = Field(
        default=30.0, gt=0, description="give up a query (lock wait included) after this long and back off"
    )
    timezone: str = "Asia/Shanghai"


class DispatchSettings(BaseModel):
    """The drop folder of the dispatch and metering file feeds (CIM/E, curve CSV) and how files are taken.

    Files land in <drop_dir>/incoming/ and move to processing/, then done/ or error/ (with a .reason file).
    One size limit serves both ways in: an upload the intake would refuse is refused before it is stored.
    """

    drop_dir: Path = Field(default=PROJECT_ROOT / "var" / "dispatch", description="root of the drop folder")
    stable_s: float = Field(
        default=2.0, ge=0, description="a file is taken once its size and mtime stayed the same this long"
    )
    max_file_bytes: int = Field(
        default=DEFAULT_MAX_FILE_BYTES,
        ge=1,
        description="largest file taken: a bigger upload gets 413 as it streams, a bigger dropped one error/",
    )
    min_free_bytes: int = Field(
        default=1024**3,
        ge=0,
        description="free space kept on the drop folder's disk: below it uploads get 507, new files wait",
    )
    min_free_percent: float = Field(
        default=0.0, ge=0, le=100, description="the same floor as a share of the disk; the larger one applies"
    )
    done_retention_days: int = Field(default=30, ge=1, description="days files stay in done/, then deleted")
    error_retention_days: int = Field(
        default=90, ge=1, description="days files stay in error/ (with their .reason file), then deleted"
    )
    sweep_interval_s: float = Field(default=3600.0, gt=0, description="how often done/ and error/ are swept")
    scan_interval_s: float = Field(default=1.0, gt=0, description="how often incoming/ is listed when idle")
    progress_every_rows: int = Field(default=100_000, ge=1, description="log progress every this many rows")


def _process_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ClusterSettings(BaseModel):
    """This instance among several on one database: its name, and how long a duty it holds stays its own."""

    instance_name: str = Field(
        default_factory=_process_name,
        min_length=1,
        max_length=191,
        description="this instance's name in the duty leases and /ready; default <hostname>-<pid>, unique "
        "per process (a fixed name must differ between instances)",
    )
    lease_ttl_s: float = Field(
        default=15.0,
        gt=0,
        description="how long a duty's lease lasts without renewal (renewed every third of it); another "
        "instance takes a duty over at most this long after its holder died",
    )


# The adapter kinds of the legacy systems today's settings name (YEKUO_MARKETING__*, _PMS__*, _DISPATCH__*).
MARKETING_SOAP = "marketing_soap"
PMS_DB = "pms_db"
DISPATCH_DROPFOLDER = "dispatch_dropfolder"


class SourceSettings(BaseModel):
    """One legacy system the hub reads: its adapter kind, the kind's own settings, and its schedule.

    kind names a factory in the hub's registry of adapter kinds; settings are checked by that kind (for
    marketing_soap, pms_db and dispatch_dropfolder: the fields of MarketingSettings, PmsSettings and
    DispatchSettings). poll_interval_s is the pause of the system's loop when a step found nothing.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="the system's name in logs and loops")
    kind: str = Field(
        min_length=1, description="adapter kind, e.g. marketing_soap, pms_db, dispatch_dropfolder"
    )
    settings: dict[str, Any] = Field(default_factory=dict, description="the adapter kind's settings")
    poll_interval_s: float | None = Field(
        default=None, gt=0, description="pause when idle; None: the kind's own (its settings' poll interval)"
    )


class ApiKeySettings(BaseModel):
    """A legacy system's API key: only its SHA-256 is configured (`yekuo auth hash-key`), never the key."""

    name: str = Field(min_length=1, description="who calls with this key; recorded as the caller (sub)")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key")
    roles: list[str] = Field(default_factory=list, description="roles granted to the key's holder")
    scopes: list[str] = Field(default_factory=list, description="extra permissions, e.g. pii:read")


class AuthSettings(BaseModel):
    """Who may call the API: HS256 bearer tokens signed with jwt_secret, or API keys for legacy systems.

    jwt_secret None means no token can be verified; `yekuo run` refuses to start without one.
    """

    jwt_secret: SecretStr | None = Field(default=None, description="HS256 signing secret, at least 32 bytes")
    issuer: str = Field(default="yekuo-hub", description="required `iss` of every token")
    audience: str = Field(default="yekuo-api", description="required `aud` of every token")
    leeway_s: float = Field(default=30.0, ge=0, description="clock skew tolerated on exp and nbf")
    token_ttl_s: int = Field(default=3600, ge=1, description="lifetime of a token `yekuo auth token` mints")
    verified_cache_s: float = Field(
        default=60.0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        description="how long a verified token's signature is trusted again; 0: never",
    )
    api_keys: list[ApiKeySettings] = Field(default_factory=list, description="keys of legacy systems")


class PiiSettings(BaseModel):
    """Keys that encrypt personal data at rest (AES-256-GCM), by key id.

    keys maps a key id to a base64-encoded 32-byte key (YEKUO_PII__KEYS='{"k2026":"..."}'); new values are
    encrypted with active_key_id, and every listed key still opens what it encrypted, so a key can be
    removed only after `yekuo pii rotate-key` has re-encrypted its values. No keys: the demo and tests
    use the public development key, and `yekuo run` refuses to start.
    """

    keys: dict[str, SecretStr] = Field(default_factory=dict, description="key id -> base64 32-byte key")
    active_key_id: str | None = Field(default=None, description="key id new values use; None: the only key")


class WebhookSettings(BaseModel):
    """Where webhook deliveries may go, and how many subscriptions one caller may hold."""

    max_per_caller: int = Field(default=20, ge=1, description="subscriptions one caller may hold at once")
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names or CIDR ranges allowed although private, loopback or link-local",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names_or_ranges(cls, entries: list[str]) -> list[str]:
        checked = []
        for entry in entries:
            text = entry.strip().lower().rstrip(".")
            try:
                checked.append(str(ipaddress.ip_network(text, strict=False)))
                continue
            except ValueError:
                pass
            if not _HOST_NAME.fullmatch(text):
                raise ValueError(f"{entry!r} is neither a host name nor an address range like 10.8.0.0/16")
            checked.append(text)
        return checked


class SubmissionSettings(BaseModel):
    """Limits on applications new platforms submit through the API (and feasibility previews)."""

    min_capacity_kva: float = Field(
        default=1.0, gt=0, allow_inf_nan=False, description="smallest requested capacity accepted, kVA"
    )
    max_capacity_kva: float = Field(
        default=200_000.0, gt=0, allow_inf_nan=False, description="largest requested capacity accepted, kVA"
    )

    @model_validator(mode="after")
    def _ordered(self) -> SubmissionSettings:
        if self.min_capacity_kva > self.max_capacity_kva:
            low, high = self.min_capacity_kva, self.max_capacity_kva
            raise ValueError(f"min_capacity_kva {low:g} is above max_capacity_kva {high:g}")
        return self


class ProcessSettings(BaseModel):
    """The process figures: the /metrics gauges' trailing window and the customers' target."""

    window_days: int = Field(
        default=90, ge=1, le=3660, description="the gauges cover cases energised in this many days up to now"
    )
    target_working_days: int = Field(
        default=15, ge=1, le=365, description="working days from submission to power customers ask for"
    )
    refresh_s: float = Field(
        default=60.0, ge=0, allow_inf_nan=False, description="seconds scrapes reuse the last gauges computed"
    )


def share_of(limit: int, processes: int) -> int:
    """One process's share of a limit the processes count apart: rounded up, so never 0."""
    return max(1, math.ceil(limit / processes))


class ProgressSettings(BaseModel):
    """Rate limits of the public progress lookup (POST /v1/progress and the /ui/progress form).

    A lookup needs the application number and the last 4 digits of the registered mobile: 10,000 codes.
    Limiting the lookups per client address and, from any address, per application number keeps guessing
    a code slow; an answer beyond a limit is 429 with Retry-After. The counts are kept per hub process:
    `yekuo api` gives each of its YEKUO_API_WORKERS processes these limits divided by their number (rounded
    up, at least 1), so together they allow about what one process would. Each further hub instance
    serving the lookup adds its own budget.
    """

    per_client: int = Field(
        default=10, ge=1, le=10_000, description="lookups one client address may make per window"
    )
    per_application: int = Field(
        default=5,
        ge=1,
        le=10_000,
        description="lookups of one application number per window, from any address",
    )
    window_s: float = Field(
        default=600.0, gt=0, le=86_400, allow_inf_nan=False, description="the sliding window, in seconds"
    )

    def shared_by(self, processes: int) -> ProgressSettings:
        """The limits of one of `processes` processes counting apart."""
        return self.model_copy(
            update={
                "per_client": share_of(self.per_client, processes),
                "per_application": share_of(self.per_application, processes),
            }
        )


class AssistantSettings(BaseModel):
    """The customer assistant (POST /v1/assistant/ask and the chat box of /ui/progress).

    Its knowledge base is config_dir/knowledge/<province>/, loaded and checked once at start-up. The
    thresholds override the retrieval's own (assistant/retrieval.py) when set. Progress questions spend
    the progress lookup's budget (ProgressSettings) besides this one; the counts are kept per hub process,
    and `yekuo api` divides per_client between its processes as it divides the progress lookup's limits.
    """

    province: str = Field(
        default="default",
        min_length=1,
        max_length=64,
        description="knowledge base under knowledge/<province>/",
    )
    answer_threshold: float | None = Field(
        default=None, ge=0, le=1, description="least score an entry is answered with; None: retrieval's own"
    )
    confident_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="least score of an answer not kept for staff as low-confidence; None: retrieval's own",
    )
    per_client: int = Field(
        default=30, ge=1, le=10_000, description="questions one client address may ask per window"
    )
    window_s: float = Field(
        default=600.0, gt=0, le=86_400, allow_inf_nan=False, description="the sliding window, in seconds"
    )

    def shared_by(self, processes: int) -> AssistantSettings:
        """The limit of one of `processes` processes counting apart."""
        return self.model_copy(update={"per_client": share_of(self.per_client, processes)})


class AuditSettings(BaseModel):
    """The keyed audit chain and where its anchors are written, outside the database.

    chain_key is a base64 key of at least 32 bytes (`yekuo audit new-key`). None: the demo and tests use
    the public development key, and `yekuo run` refuses to start.
    """

    chain_key: SecretStr | None = Field(
        default=None, description="HMAC key of the audit chain; None: the public development key"
    )
    anchor_path: Path = Field(
        default=PROJECT_ROOT / "var" / "audit-anchors.jsonl",
        description="append-only file the anchors go to; keep it on other storage than the database",
    )
    anchor_interval_s: float = Field(
        default=3600.0, gt=0, description="how often `yekuo run` anchors the chain (also once at start)"
    )
    unkeyed_through: int = Field(
        default=0,
        ge=0,
        description="last entry written before the chain was keyed: entries up to it may carry plain SHA-256",
    )


class ForecastSettings(BaseModel):
    """The forecast refresh `yekuo run` makes on schedule (and `yekuo forecast run` on demand)."""

    refresh_interval_s: float = Field(
        default=86400.0, gt=0, description="how often `yekuo run` refreshes the forecasts (also at start)"
    )
    province: str | None = Field(
        default=None, max_length=64, description="rule set of the limits and power factor; None: the defaults"
    )
    chunk_size: int = Field(
        default=500, ge=1, le=5000, description="equipment whose history is read in one query"
    )


# Where a cgroup v2 container's CPU quota is: "<quota> <period>" in microseconds, or "max <period>".
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
# Past a few processes the API waits on the database, not on the CPU, and each process holds a pool.
MAX_DEFAULT_API_WORKERS = 4
# A route holds a connection only while it reads, so a small pool per `yekuo api` process serves it, and
# keeps the database's connections within its limit as processes and instances are added.
API_POOL_SIZE = 2
API_MAX_OVERFLOW = 3


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on: its CPU affinity where the system has one, fewer where a cgroup
    v2 quota (a container's --cpus) allows less CPU time (whole cores of it); at least one."""
    affinity = getattr(os, "sched_getaffinity", None)
    cores = max(1, len(affinity(0)) if affinity is not None else os.cpu_count() or 1)
    try:
        quota, period = cpu_max.read_text().split()
        allowed = int(quota) // int(period)
    except (OSError, ValueError, ZeroDivisionError):
        # No cgroup v2 here, or "max": no quota.
        return cores
    return max(1, min(cores, allowed))


def default_api_workers() -> int:
    """The cores this process may use, at most MAX_DEFAULT_API_WORKERS."""
    return min(available_cores(), MAX_DEFAULT_API_WORKERS)


class Settings(BaseSettings):
    """All hub settings; every field can be set as YEKUO_<NAME> (nested: YEKUO_MARKETING__PAGE_SIZE)."""

    model_config = SettingsConfigDict(env_prefix="YEKUO_", env_nested_delimiter="__", extra="ignore")

    bus_url: str = "memory://"
    db_url: str = f"sqlite:///{PROJECT_ROOT / 'var' / 'yekuo.db'}"
    db_auto_upgrade: bool = Field(
        default=False,
        description="`yekuo run` upgrades an older database schema at start instead of refusing to start "
        "(off: run `yekuo db upgrade` once per release)",
    )
    config_dir: Path = Field(default=PROJECT_ROOT, description="folder holding mappings/ and routes/")
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = Field(
        default_factory=default_api_workers,
        ge=1,
        description="processes `yekuo api` serves the API from (default: the cores this process may use, "
        "counting a container's CPU quota, at most 4); each has a database pool of 2 connections and up "
        "to 3 more at a peak, so the database needs 5 per process and instance",
    )
    exchange: str = "yekuo.events"
    bus_namespace: str = Field(
        default=DEFAULT_NAMESPACE,
        description="the deployment's exchanges and queues on the broker: <namespace>.events, "
        "<namespace>.workflow, ...; give staging and production on one broker different ones",
    )

    instance_uri: str = Field(
        default=DEFAULT_INSTANCE_URI,
        description="this hub instance's identity, the start of every event's source on the bus "
        "(an absolute URI without '/', e.g. urn:yekuo:hub:prod-gd)",
    )

    @field_validator("instance_uri")
    @classmethod
    def _instance(cls, uri: str) -> str:
        return check_instance_uri(uri)

    @field_validator("bus_namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        # A ConfigError is not a ValueError: say the same thing as one, so pydantic reports it.
        if not NAMESPACE_PATTERN.fullmatch(namespace):
            raise ValueError(namespace_problem(namespace))
        return namespace

    marketing: MarketingSettings = MarketingSettings()
    pms: PmsSettings = PmsSettings()
    delivery: DeliverySettings = DeliverySettings()
    pii: PiiSettings = PiiSettings()
    auth: AuthSettings = AuthSettings()
    webhooks: WebhookSettings = WebhookSettings()
    submissions: SubmissionSettings = SubmissionSettings()
    audit: AuditSettings = AuditSettings()
    process: ProcessSettings = ProcessSettings()
    progress: ProgressSettings = ProgressSettings()
    assistant: AssistantSettings = AssistantSettings()
    forecast: ForecastSettings = ForecastSettings()
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    dispatch: DispatchSettings | None = Field(
        default=None, description="the dispatch file intake; None: not configured (YEKUO_DISPATCH__DROP_DIR)"
    )
    sources: list[SourceSettings] | None = Field(
        default=None,
        description="the legacy systems the hub reads, one entry each (YEKUO_SOURCES, a JSON list); None: "
        "marketing, PMS when YEKUO_PMS__DB_URL is set and dispatch when YEKUO_DISPATCH__DROP_DIR is",
    )

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        names = [entry.name for entry in self.sources or ()]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"sources: more than one entry named {', '.join(repeated)}")
        return self

    def drop_folder(self) -> DispatchSettings | None:
        """The settings of the declared dispatch source (its drop folder), if one is declared."""
        return next(
            (
                DispatchSettings.model_validate(entry.settings)
                for entry in self.declared_sources()
                if entry.kind == DISPATCH_DROPFOLDER
            ),
            None,
        )

    def declared_sources(self) -> list[SourceSettings]:
        """The legacy systems to read: the sources list, or the entries the per-system settings make.

        Without YEKUO_SOURCES the marketing system is always read, PMS and dispatch when configured; PMS
        polls at YEKUO_MARKETING__POLL_INTERVAL_S, the interval that setting has always given it.
        """
        if self.sources is not None:
            return list(self.sources)
        poll_s = self.marketing.poll_interval_s
        entries = [
            SourceSettings(
                name="marketing",
                kind=MARKETING_SOAP,
                settings=self.marketing.model_dump(),
                poll_interval_s=poll_s,
            )
        ]
        if self.pms.db_url:
            entries.append(
                SourceSettings(
                    name="pms", kind=PMS_DB, settings=self.pms.model_dump(), poll_interval_s=poll_s
                )
            )
        if self.dispatch is not None:
            entries.append(
                SourceSettings(name="dispatch", kind=DISPATCH_DROPFOLDER, settings=self.dispatch.model_dump())
            )
        return entries
