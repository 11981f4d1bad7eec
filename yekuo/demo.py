"""`yekuo demo`: the marketing simulator, the hub and the API in one process, end to end."""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass

from pydantic import SecretStr

from adapters.marketing.source import MarketingSource
from api.credentials import hash_api_key, mint_token
from ground.settings import DISPATCH_DROPFOLDER, ApiKeySettings, Settings
from ground.webserver import BackgroundServer
from pipeline.config import load_hub_config
from pipeline.records import PollingSource, SourceParts
from pipeline.status import HubStatus
from simulators.marketing.seed import generate_world
from simulators.marketing.server import SimulatorServer
from store.database import create_engine, create_schema, drop_schema
from yekuo.hub import Hub
from yekuo.serve import build_api
from yekuo.sources import build_sources

DEMO_TOKEN_TTL_S = 12 * 3600
DASHBOARD_PATH = "/ui/"


@dataclass(frozen=True)
class DemoOptions:
    """What the demo simulates and how it ends."""

    seed: int
    customers: int
    applications: int
    api_port: int
    sim_port: int
    exit_after_settled: bool
    timeout_s: float


def run_demo(settings: Settings, options: DemoOptions) -> int:
    """Run the demo; with exit_after_settled, return 0 once every seeded application is tracked."""
    world = generate_world(seed=options.seed, customers=options.customers, applications=options.applications)
    expected = world.application_count
    simulator = SimulatorServer(world, port=options.sim_port).start()
    print(
        f"marketing simulator: {simulator.wsdl_url} ({expected} applications, seed {options.seed})",
        flush=True,
    )

    settings, credentials = demo_credentials(settings)
    engine = create_engine(settings.db_url)
    # A demo starts from an empty hub so that its counts speak of this run only.
    drop_schema(engine)
    create_schema(engine)
    source = MarketingSource(simulator.wsdl_url, page_size=settings.marketing.page_size)
    config = load_hub_config(settings.config_dir)
    # The simulator stands in for the marketing system; a declared drop folder is read as in `yekuo run`.
    feeds = [entry for entry in settings.declared_sources() if entry.kind == DISPATCH_DROPFOLDER]
    sources: list[PollingSource | SourceParts] = [source, *build_sources(feeds, engine, config.routes)]
    hub = Hub(settings, sources=sources, engine=engine, config=config)
    hub.prepare()
    hub.purge_queues()
    hub.start()
    api = BackgroundServer(build_api(hub), host=settings.api_host, port=options.api_port).start()
    print(
        f"hub API: {api.base_url}/docs  (bus {settings.bus_url}, database {engine.url.render_as_string()})",
        flush=True,
    )
    try:
        status = _wait_until_settled(hub, expected, options.timeout_s)
        if status is None:
            print(
                f"not settled after {options.timeout_s:.0f} s: {_progress(hub.status(), expected)}",
                flush=True,
            )
            return 1
        print(
            _summary(
                status, expected, simulator.wsdl_url, api.base_url, world.all_applications()[0]["APP_NO"]
            )
            + credentials.describe(api.base_url),
            flush=True,
        )
        if options.exit_after_settled:
            return 0
        print("serving; press Ctrl-C to stop", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)
        return 0
    finally:
        hub.stop()
        api.stop()
        simulator.stop()
        engine.dispose()


@dataclass(frozen=True)
class DemoCredentials:
    """What a tester needs to call the demo's API and open its dashboard: an admin token (pasted into the
    dashboard's login form too) and the integrator's API key."""

    admin_token: str
    integrator_key: str

    def describe(self, api_url: str) -> str:
        """Lines to print after the summary."""
        return "\n".join(
            [
                f"  admin token (12 h, with pii:read)    : {self.admin_token}",
                f"  integrator API key (X-API-Key)       : {self.integrator_key}",
                f"  dashboard (paste the admin token)    : {api_url}{DASHBOARD_PATH}",
                f'  with a token: curl -H "Authorization: Bearer $TOKEN" {api_url}/v1/applications',
                f"  customer assistant (public)          : {api_url}/ui/progress, or curl -H "
                f"'Content-Type: application/json' -d '{{\"question\": \"三零服务是什么\"}}' "
                f"{api_url}/v1/assistant/ask",
                "",
            ]
        )


def demo_credentials(settings: Settings) -> tuple[Settings, DemoCredentials]:
    """Settings whose auth has a secret (an ephemeral one unless configured) and a fresh integrator key."""
    auth = settings.auth
    if auth.jwt_secret is None:
        auth = auth.model_copy(update={"jwt_secret": SecretStr(secrets.token_urlsafe(48))})
    integrator_key = secrets.token_urlsafe(24)
    demo_key = ApiKeySettings(
        name="demo-integrator", sha256=hash_api_key(integrator_key), roles=["integrator"]
    )
    auth = auth.model_copy(update={"api_keys": [*auth.api_keys, demo_key]})
    token = mint_token(auth, sub="demo-admin", roles=["admin"], scopes=["pii:read"], ttl_s=DEMO_TOKEN_TTL_S)
    return settings.model_copy(update={"auth": auth}), DemoCredentials(token, integrator_key)


def _wait_until_settled(hub: Hub, expected: int, timeout_s: float) -> HubStatus | None:
    deadline = time.monotonic() + timeout_s
    last_line = ""
    while time.monotonic() < deadline:
        status = hub.status()
        line = _progress(status, expected)
        if line != last_line:
            print(line, flush=True)
            last_line = line
        if status.cases >= expected and status.pending == 0:
            return status
        time.sleep(0.5)
    return None


def _progress(status: HubStatus, expected: int) -> str:
    degraded = [name for name, health in status.loops.items() if not health.ok]
    note = f"  degraded: {', '.join(degraded)}" if degraded else ""
    return (
        f"tracked {status.cases}/{expected}  records read {status.records}  published {status.published}"
        f"  in outbox {status.pending}  rejected {status.rejected}{note}"
    )


def _summary(status: HubStatus, expected: int, wsdl_url: str, api_url: str, sample_no: str) -> str:
    return "\n".join(
        [
            "",
            "yekuo-hub demo: settled",
            f"  applications seeded by the simulator : {expected}",
            f"  applications tracked as cases        : {status.cases}",
            f"  messages published (confirmed)       : {status.published}",
            f"  messages rejected (parked)           : {status.rejected}",
            f"  marketing simulator WSDL             : {wsdl_url}",
            f"  try: curl {api_url}/v1/applications/{sample_no}",
            "",
        ]
    )
