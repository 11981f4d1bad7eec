"""`yekuo run`: the hub and its API against the legacy systems declared in the settings; `yekuo api`: the API
alone, from several processes, beside the hub instances."""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from adapters.dispatch.upload import DropFolderUploads
from adapters.marketing.push import PushMappings
from adapters.marketing.wiring import MarketingAdapter
from api.app import create_app
from api.credentials import CredentialsError, signing_secret
from api.metrics import HubMetrics, watched_queues
from bus import open_bus
from forecast.refresh import ForecastLoop, refresh_settings
from ground.errors import ConfigError
from ground.settings import API_MAX_OVERFLOW, API_POOL_SIZE, Settings
from ground.webserver import STARTUP_FAILURE, BackgroundServer, bind_socket, serve_workers
from pipeline.config import load_hub_config
from pipeline.ingest import Ingestor
from pipeline.operations import Operations
from store.audit import AuditKeyError, bind_chain_key, chain_key_from_settings
from store.crypto import Keyring, PiiKeyError, keyring_from_settings
from store.database import create_engine, schema_status
from yekuo.audit import AnchorLoop
from yekuo.consumers import CONSUMERS
from yekuo.hub import Hub

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def build_api(hub: Hub, marketing: MarketingAdapter | None = None) -> FastAPI:
    """The API of a running hub: its readiness, the operators' actions and its metrics."""
    operations = Operations(
        hub.engine,
        open_bus=functools.partial(open_bus, hub.settings.bus_url, hub.settings.bus_namespace),
        ingestor=Ingestor(hub.engine, hub.config.router),
        settings=hub.settings,
    )
    metrics = HubMetrics(hub.engine, operations.open_bus, watched_queues(hub.consumers))
    reports = {"marketing": marketing.status(lambda: hub.health)} if marketing is not None else None
    # Uploads go into the drop folder the declared dispatch source reads, however it was declared.
    dispatch = hub.settings.drop_folder()
    uploads = DropFolderUploads(dispatch) if dispatch is not None else None
    wake = functools.partial(hub.wake, f"poll:{marketing.source.name}") if marketing is not None else None
    return create_app(
        hub.engine,
        auth=hub.settings.auth,
        consumers=hub.consumers,
        readiness=hub.readiness,
        instance=hub.leases.owner,
        operations=operations,
        metrics=metrics,
        adapter_reports=reports,
        on_push=wake,
        webhooks=hub.settings.webhooks,
        push_mappings=PushMappings.of(hub.config.mappings),
        dispatch_uploads=uploads,
    )


def production_keyring(settings: Settings) -> Keyring:
    """The keyring personal data is sealed with, once the settings hold everything a real hub needs.

    Raises CredentialsError without a token secret (tokens signed with a known one would let anyone in)
    and PiiKeyError without a key (real customers' personal data needs a real key, not the development one).
    """
    signing_secret(settings.auth)
    return keyring_from_settings(settings.pii, allow_development=False)


def serve_hub(settings: Settings) -> int:
    """Run until interrupted."""
    try:
        keyring = production_keyring(settings)
        # A chain keyed with the public development key could be rewritten by anyone.
        chain_key = chain_key_from_settings(settings.audit, allow_development=False)
    except CredentialsError as exc:
        print(f"yekuo run: {exc}; mint tokens with `yekuo auth token` once it is set", file=sys.stderr)
        return 1
    except (PiiKeyError, AuditKeyError) as exc:
        print(f"yekuo run: {exc}", file=sys.stderr)
        return 1
    engine = create_engine(settings.db_url, keyring=keyring)
    # The hub creates a schema where there is none, but changes an existing one only when told to: with
    # several instances, the operator upgrades once, and instances of the old release keep running meanwhile.
    schema = schema_status(engine)
    if schema.behind and not settings.db_auto_upgrade:
        engine.dispose()
        print(
            f"yekuo run: the database schema is {schema.describe()}; run `yekuo db upgrade` first, "
            "or set YEKUO_DB_AUTO_UPGRADE=true to upgrade at start",
            file=sys.stderr,
        )
        return 1
    bind_chain_key(engine, chain_key)
    config = load_hub_config(settings.config_dir)
    anchors = AnchorLoop(engine, settings.audit)

    def refresh_stopping() -> bool:
        # A refresh runs for minutes over a large grid and writes unfenced: it stops between chunks once
        # the hub (built below, with the refresh as one of its singletons) stops or loses the duty.
        return hub.stopping_duty("forecast:refresh")()

    forecasts = ForecastLoop(
        engine, refresh_settings(settings), settings.forecast.refresh_interval_s, stopping=refresh_stopping
    )
    # Once per cluster: two instances would anchor the one chain twice and refresh every forecast twice.
    singletons = [("audit:anchor", anchors.step), ("forecast:refresh", forecasts.step)]
    try:
        hub = Hub(settings, engine=engine, config=config, singletons=singletons)
    except ConfigError as exc:
        print(f"yekuo run: {exc}", file=sys.stderr)
        return 1
    adapters = [part.adapter for part in hub.sources]
    marketing = next((adapter for adapter in adapters if isinstance(adapter, MarketingAdapter)), None)
    hub.start()
    api = BackgroundServer(build_api(hub, marketing), host=settings.api_host, port=settings.api_port).start()
    polled = ", ".join(part.name for part in hub.sources)
    print(f"hub API on {api.base_url}; polling {polled}", flush=True)
    try:
        _wait_for_stop_signal()
    finally:
        hub.stop()
        api.stop()
    return 0


def api_app() -> FastAPI:
    """The API of one `yekuo api` process, over an engine of its own.

    Each process calls this once after it started, so no pooled connection is shared between processes.
    The parent built the same app before starting them, so a failure here is one of this process's start
    (settings changed under it): it exits with STARTUP_FAILURE, which stops the parent instead of a restart.
    """
    settings = Settings()
    try:
        engine = create_engine(
            settings.db_url,
            keyring=production_keyring(settings),
            pool_size=API_POOL_SIZE,
            max_overflow=API_MAX_OVERFLOW,
        )
        return _api_of(settings, engine)
    except (ConfigError, CredentialsError) as exc:
        print(f"yekuo api: {exc}", file=sys.stderr)
        raise SystemExit(STARTUP_FAILURE) from exc


def _api_of(settings: Settings, engine: Engine) -> FastAPI:
    """Without the hub's loops beside it, readiness checks the database and the bus, and a marketing push is
    picked up by the hub's next poll rather than waking it."""
    bind_chain_key(engine, chain_key_from_settings(settings.audit, allow_development=False))
    dispatch = settings.drop_folder()
    return create_app(
        engine,
        auth=settings.auth,
        consumers=CONSUMERS,
        webhooks=settings.webhooks,
        dispatch_uploads=DropFolderUploads(dispatch) if dispatch is not None else None,
        processes=settings.api_workers,
    )


def serve_api(settings: Settings) -> int:
    """Serve the API from settings.api_workers processes until SIGINT or SIGTERM; 1 when it cannot start.

    Each process answers /metrics for itself alone; the hub's metrics come from `yekuo run`.
    """
    try:
        probe = create_engine(settings.db_url, keyring=production_keyring(settings))
    except CredentialsError as exc:
        print(f"yekuo api: {exc}; mint tokens with `yekuo auth token` once it is set", file=sys.stderr)
        return 1
    except ConfigError as exc:
        print(f"yekuo api: {exc}", file=sys.stderr)
        return 1
    try:
        schema = schema_status(probe)
        if schema.behind or schema.empty:
            print(
                f"yekuo api: the database schema is {schema.describe()}; run `yekuo db upgrade` first",
                file=sys.stderr,
            )
            return 1
        # Built once here so that settings no process could start with stop the command at once, as they
        # stop `yekuo run`, rather than in every process the supervisor would start again.
        _api_of(settings, probe)
    except ConfigError as exc:
        print(f"yekuo api: {exc}", file=sys.stderr)
        return 1
    finally:
        probe.dispose()
    sock = bind_socket(settings.api_host, settings.api_port)
    host, port = sock.getsockname()[:2]
    print(f"hub API on {host}:{port} from {settings.api_workers} processes", flush=True)
    # The processes read their settings from the environment they inherit, --workers included: each takes
    # its share of the guessing limits by it.
    os.environ["YEKUO_API_WORKERS"] = str(settings.api_workers)
    if not serve_workers("yekuo.serve:api_app", sock, settings.api_workers):
        print("yekuo api: a process could not build the API; stopped them all", file=sys.stderr)
        return 1
    return 0


def _wait_for_stop_signal() -> None:
    """Wait for SIGTERM (docker stop, Kubernetes) or SIGINT (Ctrl-C), so the hub stops and hands its
    leases over at once instead of leaving the other instances to wait for their expiry."""
    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in _STOP_SIGNALS}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
