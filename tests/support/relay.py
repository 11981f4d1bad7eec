"""A TCP relay in front of a service that a test can cut, to lose connections the way a network does."""

from __future__ import annotations

import contextlib
import socket
import threading


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class TcpRelay:
    """Relays every connection on `port` to 127.0.0.1:upstream_port until cut.

    cut() drops every relayed connection; with refuse=True new connections are dropped as soon as they
    arrive (an outage) until restore(). close() stops the relay.
    """

    def __init__(self, upstream_port: int) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._upstream_port = upstream_port
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._refusing = False
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, name=f"relay:{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._refusing or self._closed:
                    _shut(client)
                    client.close()
                    continue
                self.accepted += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            _shut(target)

    def cut(self, *, refuse: bool = False) -> None:
        """Drop every relayed connection; with refuse, drop new ones too until restore()."""
        with self._lock:
            self._refusing = refuse
            sockets, self._sockets = self._sockets, []
        # Shut every socket down before closing any: closing a socket that another thread is blocked
        # reading neither wakes that thread nor tells the peer.
        for sock in sockets:
            _shut(sock)
        for sock in sockets:
            sock.close()

    def restore(self) -> None:
        """Accept and relay new connections again."""
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        """Drop everything and stop listening."""
        with self._lock:
            self._closed = True
        self.cut()
        _shut(self._listener)
        self._listener.close()
