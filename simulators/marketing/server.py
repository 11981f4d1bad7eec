"""Run the marketing simulator with uvicorn: in a background thread (tests, demo) or in the foreground.

`yekuo sim marketing --host H --port P --seed S --customers C --applications A [--fault SPEC ...]
[--push-url URL] [--change-interval S]` calls run(...), which prints the WSDL URL and serves until
interrupted. With a change interval, one open application moves on a step every S seconds (seeded), and
with a push URL every change is pushed to the hub as well.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence

from ground import clock
from ground.webserver import BackgroundServer, base_url_of, bind_socket, serve_forever
from simulators.marketing.app import ENDPOINT_PATH, MAX_REQUEST_BYTES, create_app
from simulators.marketing.faults import FaultPlan
from simulators.marketing.history import history_world
from simulators.marketing.push import Pusher
from simulators.marketing.seed import generate_world
from simulators.marketing.world import LEGACY_ZONE, MarketingWorld, status_flow


class SimulatorServer(BackgroundServer):
    """The marketing simulator serving world from a daemon thread; port 0 picks a free port.

    The port is bound on construction, so base_url and wsdl_url are known before start(). faults is the
    fault plan every call runs through (default: none); tests read what it did from faults.calls.
    """

    def __init__(
        self,
        world: MarketingWorld,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        faults: FaultPlan | None = None,
    ) -> None:
        self.faults = faults if faults is not None else FaultPlan()
        super().__init__(
            create_app(world, max_request_bytes=max_request_bytes, faults=self.faults),
            host=host,
            port=port,
            name="marketing simulator",
        )
        self.world = world
        self.endpoint_url = f"{self.base_url}{ENDPOINT_PATH}"
        self.wsdl_url = f"{self.endpoint_url}?wsdl"

    def start(self) -> SimulatorServer:
        """Start serving; return once connections are accepted."""
        super().start()
        return self

    def __enter__(self) -> SimulatorServer:
        return self.start()


def change_one(world: MarketingWorld, rng: random.Random) -> str | None:
    """Move one application that is not archived yet a step along its process; return its APP_NO."""
    open_ones = [
        row["APP_NO"] for row in world.all_applications() if row["STATUS_CODE"] != status_flow(row)[-1]
    ]
    if not open_ones:
        return None
    app_no = rng.choice(open_ones)
    world.advance(app_no)
    return app_no


def _keep_changing(world: MarketingWorld, seed: int, interval_s: float, stop: threading.Event) -> None:
    rng = random.Random(seed)
    while not stop.wait(interval_s):
        change_one(world, rng)


def run(
    host: str,
    port: int,
    seed: int,
    customers: int,
    applications: int,
    *,
    faults: Sequence[str] = (),
    push_url: str | None = None,
    push_api_key: str | None = None,
    change_interval_s: float | None = None,
    history_years: int | None = None,
) -> None:
    """Generate a seeded world and serve it in the foreground, printing the WSDL URL once listening.

    history_years: a world of that many complete years of applications before the clock's year
    (history.py), `applications` of them in the first year, instead of the default world.
    """
    plan = FaultPlan.parse(faults)
    if history_years is None:
        world = generate_world(seed, customers, applications)
        size = f"{applications} applications"
    else:
        this_year = clock.now().astimezone(LEGACY_ZONE).year
        world = history_world(seed, customers, history_years, applications, this_year=this_year)
        size = f"{len(world.all_applications())} applications over {history_years} years"
    sock = bind_socket(host, port)
    lines = [
        f"marketing simulator: {customers} customers, {size} (seed {seed})",
        f"WSDL: {base_url_of(sock)}{ENDPOINT_PATH}?wsdl",
    ]
    lines.extend(f"fault: {spec}" for spec in faults)
    if push_url:
        lines.append(f"pushing changes to {push_url}")
    print("\n".join(lines), flush=True)
    pusher = Pusher(push_url, world, api_key=push_api_key).start() if push_url else None
    stop = threading.Event()
    if change_interval_s:
        threading.Thread(
            target=_keep_changing, args=(world, seed, change_interval_s, stop), name="changes", daemon=True
        ).start()
    try:
        serve_forever(create_app(world, faults=plan), sock)
    finally:
        stop.set()
        if pusher is not None:
            pusher.stop()
