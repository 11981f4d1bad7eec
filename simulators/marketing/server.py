"""Run the marketing simulator with uvicorn: in a background thread (tests, demo) or in the foreground.

`yekuo sim marketing --host H --port P --seed S --customers C --applications A` calls
run(host, port, seed, customers, applications), which prints the WSDL URL and serves until interrupted.
"""

from __future__ import annotations

from simulators.marketing.app import ENDPOINT_PATH, MAX_REQUEST_BYTES, create_app
from simulators.marketing.seed import generate_world
from simulators.marketing.world import MarketingWorld
from yekuo.webserver import BackgroundServer, base_url_of, bind_socket, serve_forever


class SimulatorServer(BackgroundServer):
    """The marketing simulator serving world from a daemon thread; port 0 picks a free port.

    The port is bound on construction, so base_url and wsdl_url are known before start().
    """

    def __init__(
        self,
        world: MarketingWorld,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        super().__init__(
            create_app(world, max_request_bytes=max_request_bytes),
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


def run(host: str, port: int, seed: int, customers: int, applications: int) -> None:
    """Generate a seeded world and serve it in the foreground, printing the WSDL URL once listening."""
    world = generate_world(seed, customers, applications)
    sock = bind_socket(host, port)
    print(
        f"marketing simulator: {customers} customers, {applications} applications (seed {seed})\n"
        f"WSDL: {base_url_of(sock)}{ENDPOINT_PATH}?wsdl",
        flush=True,
    )
    serve_forever(create_app(world), sock)
