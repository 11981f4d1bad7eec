"""Serve an ASGI app with uvicorn, in a background thread (demo, simulators, tests) or in the foreground, from
one process or several."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp
from uvicorn.supervisors import Multiprocess

from ground.errors import ConfigError

_STARTUP_TIMEOUT_S = 10.0
# The exit status of a process whose app could not be built; uvicorn's supervisor does not restart it.
STARTUP_FAILURE = uvicorn.config.STARTUP_FAILURE


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free port, known before the server starts."""
    # proto IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on such sockets, and without it every answer
    # on a kept-alive connection waits for a delayed ACK (about 40 ms).
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
    return sock


def base_url_of(sock: socket.socket) -> str:
    """The root URL a bound socket serves."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn(app: ASGIApp) -> uvicorn.Server:
    return uvicorn.Server(
        uvicorn.Config(app, lifespan="off", ws="none", log_level="warning", access_log=False)
    )


def serve_forever(app: ASGIApp, sock: socket.socket) -> None:
    """Serve in the foreground until interrupted."""
    _uvicorn(app).run(sockets=[sock])


def serve_workers(factory: str, sock: socket.socket, workers: int) -> bool:
    """Serve in the foreground from `workers` processes sharing the socket, until SIGINT or SIGTERM.

    factory names a function, "module:function", that each process calls once to build its own app, so
    nothing made before the processes start (a database pool, a thread) is shared between them. Uvicorn's
    supervisor starts them fresh (spawn, not fork) and starts one again when it dies, unless it exited with
    STARTUP_FAILURE: its app cannot be built and would fail the same way on every restart, so all stop and
    this returns False. True once stopped by a signal.
    """
    config = uvicorn.Config(
        factory,
        factory=True,
        workers=workers,
        lifespan="off",
        ws="none",
        log_level="warning",
        access_log=False,
    )
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return True
    supervisor = Multiprocess(config, sockets=[sock])
    supervisor.run()
    return all(process.exitcode != STARTUP_FAILURE for process in supervisor.processes)


class BackgroundServer:
    """A uvicorn server on a daemon thread; used as a context manager it starts on entry and stops on exit."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0, name: str = "http") -> None:
        self._socket = bind_socket(host, port)
        self.port: int = self._socket.getsockname()[1]
        self.base_url = base_url_of(self._socket)
        self._name = name
        self._server = _uvicorn(app)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=name, daemon=True
        )

    def start(self) -> BackgroundServer:
        """Start serving; return once connections are accepted."""
        self._thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()
            raise ConfigError(f"{self._name} on {self.base_url} did not start")
        return self

    def stop(self) -> None:
        """Stop serving and wait for the server thread to finish."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(_STARTUP_TIMEOUT_S)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
