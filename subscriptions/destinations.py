"""Where webhook deliveries may go: http(s) URLs whose host is, or resolves only to, allowed addresses.

Public addresses are allowed; loopback, link-local (the cloud metadata address 169.254.169.254 among
them), private, shared (CGNAT), unspecified, multicast and reserved ones are not, also when written as
IPv4-mapped or 6to4 IPv6 addresses, unless settings.webhooks.allowed_hosts names the host or a range
holding the address. A URL is vetted when it is subscribed and again before each delivery: its host is
resolved then (by the resolver passed in, socket.getaddrinfo unless a test swaps it), every address must
pass, and the delivery connects to a vetted address while sending the URL's own host name as Host header
and TLS server name. The name is not resolved a second time, so a DNS answer that changes between the
check and the connection (rebinding) cannot turn a delivery towards an internal address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx2

from ground.errors import DestinationRefusedError, DestinationUnresolvedError
from ground.settings import WebhookSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# The shape of socket.getaddrinfo(host, port): (family, type, proto, canonname, sockaddr) tuples.
Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]

DEFAULT_PORTS = {"http": 80, "https": 443}
_HOW_TO_ALLOW = "list the host or its range in settings.webhooks.allowed_hosts to allow it"


def address_refusal(address: IPAddress) -> str | None:
    """What kind of address deliveries may not go to unless allowed ("a loopback address"); None: public."""
    if isinstance(address, ipaddress.IPv6Address):
        # These forms reach the IPv4 address they carry, so that address decides.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return address_refusal(embedded)
        if address.is_site_local:
            return "a site-local address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "a shared (carrier-grade NAT) address"
    return None


@dataclass(frozen=True)
class AllowList:
    """Host names and address ranges deliveries may reach although they are not public."""

    names: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """The list from settings entries (checked there): CIDR ranges or single addresses, else names."""
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def allows_name(self, host: str) -> bool:
        """Whether the host name is listed: then every address it resolves to is allowed."""
        return host in self.names

    def allows_address(self, address: IPAddress) -> bool:
        """Whether a listed range holds the address, or the IPv4 address an IPv6 form of it carries."""
        forms: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            forms += [form for form in (address.ipv4_mapped, address.sixtofour) if form is not None]
        return any(form in network for form in forms for network in self.networks)


@dataclass(frozen=True)
class Destination:
    """A vetted URL and the addresses a delivery may connect to, in the resolver's order."""

    url: httpx2.URL
    host: str
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        """The Host header the receiver expects: the URL's host, with its port when not the default."""
        return self.url.netloc.decode("ascii")

    @property
    def extensions(self) -> dict[str, Any]:
        """Request extensions that make TLS name (SNI) and check the certificate of the URL's host."""
        return {"sni_hostname": self.host} if self.url.scheme == "https" else {}

    def pinned_url(self, address: IPAddress) -> httpx2.URL:
        """The URL with its host replaced by a vetted address, so connecting resolves nothing."""
        return self.url.copy_with(host=str(address))


class DestinationPolicy:
    """Vets webhook URLs against the allowlist, resolving host names with the given resolver."""

    def __init__(self, settings: WebhookSettings, *, resolver: Resolver = socket.getaddrinfo) -> None:
        self._allow = AllowList.parse(settings.allowed_hosts)
        self._resolve = resolver

    def vet(self, url: str) -> Destination:
        """The destination of a URL with the addresses to connect to.

        Raises DestinationRefusedError for a scheme other than http(s) or any address not allowed, and
        DestinationUnresolvedError when the host name does not resolve.
        """
        try:
            parsed = httpx2.URL(url)
        except httpx2.InvalidURL as exc:
            raise DestinationRefusedError(f"{url[:200]!r} is not a valid URL: {exc}") from exc
        if parsed.scheme not in DEFAULT_PORTS:
            raise DestinationRefusedError(
                f"scheme {parsed.scheme!r} is not allowed; webhooks are delivered over http or https only"
            )
        host = parsed.raw_host.decode("ascii").lower().rstrip(".")
        if not host:
            raise DestinationRefusedError(f"{url[:200]!r} names no host")
        addresses = self._addresses(host, parsed.port or DEFAULT_PORTS[parsed.scheme])
        if not self._allow.allows_name(host):
            for address in addresses:
                reason = address_refusal(address)
                if reason is not None and not self._allow.allows_address(address):
                    where = str(address) if str(address) == host else f"{host} resolves to {address}, which"
                    raise DestinationRefusedError(f"{where} is {reason}; {_HOW_TO_ALLOW}")
        return Destination(parsed, host, addresses)

    def _addresses(self, host: str, port: int) -> tuple[IPAddress, ...]:
        try:
            return (ipaddress.ip_address(host),)
        except ValueError:
            pass  # a name, not an address literal
        try:
            answers = self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise DestinationUnresolvedError(f"host {host} does not resolve: {exc}") from exc
        found: dict[IPAddress, None] = {}
        for family, _type, _proto, _name, sockaddr in answers:
            if family in (socket.AF_INET, socket.AF_INET6):
                found.setdefault(ipaddress.ip_address(sockaddr[0]), None)
        if not found:
            raise DestinationUnresolvedError(f"host {host} resolves to no IP address")
        return tuple(found)
