"""Webhook destinations: every non-public address class is refused, names by what they resolve to, and
the allowlist lets named hosts and ranges through; a vetted destination is connected to by address."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from pydantic import ValidationError

from ground.errors import DestinationRefusedError, DestinationUnresolvedError
from ground.settings import WebhookSettings
from subscriptions.destinations import DestinationPolicy, address_refusal
from tests.support.webhooks import PUBLIC_ADDRESS, ScriptedDns

# (address, the kind named in the refusal)
DENIED = [
    ("127.0.0.1", "loopback"),
    ("127.45.6.7", "loopback"),
    ("::1", "loopback"),
    ("169.254.169.254", "link-local"),  # the cloud metadata service
    ("169.254.10.20", "link-local"),
    ("fe80::1", "link-local"),
    ("febf:ffff::1", "link-local"),
    ("10.0.0.1", "private"),
    ("10.255.255.254", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("fc00::1", "private"),
    ("fd12:3456::1", "private"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "private"),  # 0.0.0.0/8, "this network"
    ("::", "unspecified"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "private"),  # documentation range
    ("fec0::1", "site-local"),
    ("64:ff9b::7f00:1", "reserved"),  # NAT64 form of 127.0.0.1
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "link-local"),
    ("::ffff:10.1.2.3", "private"),
    ("::ffff:100.64.0.1", "carrier-grade NAT"),
    ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
    ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 around 169.254.169.254
]
PUBLIC = [PUBLIC_ADDRESS, "8.8.8.8", "2606:4700:4700::1111", f"::ffff:{PUBLIC_ADDRESS}"]


def url_of(address: str, path: str = "/hook") -> str:
    host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    return f"http://{host}{path}"


def policy(*allowed: str, dns: ScriptedDns | None = None) -> DestinationPolicy:
    return DestinationPolicy(WebhookSettings(allowed_hosts=list(allowed)), resolver=dns or ScriptedDns())


@pytest.mark.parametrize(("address", "kind"), DENIED, ids=[address for address, _ in DENIED])
def test_each_denied_address_class_is_refused(address: str, kind: str) -> None:
    reason = address_refusal(ipaddress.ip_address(address))
    assert reason is not None and kind in reason
    with pytest.raises(DestinationRefusedError) as refused:
        policy().vet(url_of(address))
    assert kind in str(refused.value)
    assert "settings.webhooks.allowed_hosts" in str(refused.value)  # the refusal says how to allow it


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None
    destination = policy().vet(url_of(address))
    assert destination.addresses == (ipaddress.ip_address(address),)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://files.example/hook",
        "file:///etc/passwd",
        "gopher://platform.example/",
        "ws://platform.example/",
    ],
)
def test_non_http_schemes_are_refused(url: str) -> None:
    dns = ScriptedDns({"files.example": [PUBLIC_ADDRESS], "platform.example": [PUBLIC_ADDRESS]})
    with pytest.raises(DestinationRefusedError, match="http or https only"):
        policy(dns=dns).vet(url)
    assert dns.lookups == []  # refused before any name is resolved
    assert policy(dns=dns).vet("https://platform.example/hook").host == "platform.example"


def test_a_name_is_refused_when_any_address_it_resolves_to_is_denied() -> None:
    dns = ScriptedDns(
        {
            "localhost.example": ["127.0.0.1"],
            "mixed.example": [PUBLIC_ADDRESS, "10.0.0.5"],
            "metadata.example": ["169.254.169.254"],
            "good.example": [PUBLIC_ADDRESS, "2606:4700:4700::1111"],
        }
    )
    vetting = policy(dns=dns)
    with pytest.raises(
        DestinationRefusedError, match=r"localhost\.example resolves to 127\.0\.0\.1.*loopback"
    ):
        vetting.vet("https://localhost.example/hook")
    with pytest.raises(DestinationRefusedError, match=r"resolves to 10\.0\.0\.5.*private"):
        vetting.vet("https://mixed.example/hook")
    with pytest.raises(DestinationRefusedError, match="link-local"):
        vetting.vet("http://metadata.example/latest/meta-data/")
    good = vetting.vet("https://good.example/hook")
    assert [str(address) for address in good.addresses] == [PUBLIC_ADDRESS, "2606:4700:4700::1111"]


def test_the_real_resolver_is_the_default_and_refuses_local_spellings() -> None:
    vetting = DestinationPolicy(WebhookSettings())
    # Resolved by the system without any network: the hosts file and numeric forms.
    for url in ("http://localhost/hook", "http://127.1/hook", "http://2130706433/hook", "http://LOCALHOST./"):
        with pytest.raises(DestinationRefusedError, match="loopback"):
            vetting.vet(url)


def test_the_allowlist_lets_named_hosts_and_ranges_through() -> None:
    dns = ScriptedDns({"receiver.internal": ["10.1.1.1"], "other.internal": ["10.1.1.1"]})
    vetting = policy("127.0.0.1/32", "Receiver.Internal", "10.8.0.0/16", dns=dns)
    assert vetting.vet("http://127.0.0.1:8080/hook").addresses == (ipaddress.ip_address("127.0.0.1"),)
    assert vetting.vet("http://[::ffff:127.0.0.1]/hook").host == "::ffff:127.0.0.1"  # the same address
    assert vetting.vet("http://receiver.internal/hook").addresses == (ipaddress.ip_address("10.1.1.1"),)
    assert vetting.vet("http://10.8.3.4/hook").host == "10.8.3.4"
    for refused in (
        "http://127.0.0.2/",
        "http://other.internal/",
        "http://10.9.0.1/",
        "http://169.254.169.254/",
    ):
        with pytest.raises(DestinationRefusedError):
            vetting.vet(refused)


def test_a_host_that_does_not_resolve_is_reported_as_unresolved() -> None:
    dns = ScriptedDns({"good.example": [PUBLIC_ADDRESS]})
    with pytest.raises(DestinationUnresolvedError, match=r"nowhere\.example does not resolve"):
        policy(dns=dns).vet("https://nowhere.example/hook")
    assert policy(dns=dns).vet("https://good.example/hook").addresses


def test_a_vetted_destination_is_reached_by_address_under_its_own_name() -> None:
    dns = ScriptedDns({"hooks.example": ["2606:4700:4700::1111", PUBLIC_ADDRESS]})
    destination = policy(dns=dns).vet("https://Hooks.Example:8443/in?x=1")
    assert dns.lookups == ["hooks.example"]
    v6, v4 = destination.addresses
    assert str(destination.pinned_url(v4)) == f"https://{PUBLIC_ADDRESS}:8443/in?x=1"
    assert str(destination.pinned_url(v6)) == "https://[2606:4700:4700::1111]:8443/in?x=1"
    assert destination.host_header == "hooks.example:8443"
    assert destination.extensions == {"sni_hostname": "hooks.example"}
    plain = policy(dns=dns).vet("http://hooks.example/in")
    assert (plain.host_header, plain.extensions) == ("hooks.example", {})


def test_allowlist_entries_must_be_host_names_or_ranges() -> None:
    settings = WebhookSettings(allowed_hosts=["127.0.0.1", "Receiver.Internal.", "10.8.0.0/16", "fe80::/10"])
    assert settings.allowed_hosts == ["127.0.0.1/32", "receiver.internal", "10.8.0.0/16", "fe80::/10"]
    for bad in ("http://receiver.internal/", "10.0.0.0/33", "two words", "-leading.example"):
        with pytest.raises(ValidationError, match="neither a host name nor an address range"):
            WebhookSettings(allowed_hosts=["10.8.0.0/16", bad])


def test_getaddrinfo_answers_of_other_families_are_ignored() -> None:
    def resolver(host: str, port: int) -> list[tuple[object, ...]]:
        return [
            (socket.AF_UNIX, socket.SOCK_STREAM, 0, "", "/run/x.sock"),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_ADDRESS, port)),
            (socket.AF_INET, socket.SOCK_DGRAM, 17, "", (PUBLIC_ADDRESS, port)),  # the same address twice
        ]

    destination = DestinationPolicy(WebhookSettings(), resolver=resolver).vet("https://hooks.example/")
    assert destination.addresses == (ipaddress.ip_address(PUBLIC_ADDRESS),)
