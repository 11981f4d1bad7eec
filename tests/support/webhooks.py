"""A scripted DNS for webhook tests: each name answers the addresses a test gives it, and lookups are logged.

dns = ScriptedDns({"platform.example": [PUBLIC_ADDRESS]})
WebhookDispatcher(engine, settings, resolver=dns)   # or webhooks_router(engine, resolver=dns)
dns.answers["platform.example"] = ["127.0.0.1"]     # the name now resolves elsewhere (rebinding)
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any

# Globally routable, so subscribing to it is allowed. No test delivers to it: nothing may leave the machine.
PUBLIC_ADDRESS = "93.184.215.14"


def address_info(address: str, port: int) -> tuple[Any, ...]:
    """One answer in socket.getaddrinfo's shape."""
    if ipaddress.ip_address(address).version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port, 0, 0))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


@dataclass
class ScriptedDns:
    """A resolver with socket.getaddrinfo's interface; a name it was not given does not resolve."""

    answers: dict[str, list[str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int) -> list[tuple[Any, ...]]:
        self.lookups.append(host)
        addresses = self.answers.get(host)
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [address_info(address, port) for address in addresses]
