"""open_bus() picks the transport by URL scheme and never leaks a password into an error."""

from __future__ import annotations

import pytest

from bus import open_bus
from bus.factory import node_urls, redact_url
from bus.memory import MemoryBus, discard_broker
from ground.errors import BusUnavailableError, ConfigError


def test_memory_urls_open_the_in_process_bus() -> None:
    bus = open_bus("memory://factory-test")
    try:
        assert isinstance(bus, MemoryBus)
        assert bus.url == "memory://factory-test"
    finally:
        bus.close()
        discard_broker("memory://factory-test")


@pytest.mark.parametrize(
    "url", ["redis://user:s3cret@localhost:6379/0", "kafka://broker:9092", "localhost:5672"]
)
def test_other_schemes_are_a_config_error_naming_the_scheme(url: str) -> None:
    with pytest.raises(ConfigError, match="unsupported bus URL scheme") as raised:
        open_bus(url)
    assert "s3cret" not in str(raised.value)
    assert "memory://" in str(raised.value)


def test_unreachable_broker_is_bus_unavailable_without_the_password() -> None:
    # Port 1 on loopback has no listener: the connection is refused at once.
    with pytest.raises(BusUnavailableError, match="cannot connect") as raised:
        open_bus("amqp://guest:s3cret@127.0.0.1:1/")
    assert "s3cret" not in str(raised.value)


def test_bad_amqp_options_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="heartbeat"):
        open_bus("amqp://guest:guest@127.0.0.1:1/?heartbeat=often")


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("amqp://user:pw@[::1]/vhost?heartbeat=5", "amqp://user:***@[::1]/vhost?heartbeat=5"),
        ("amqp://127.0.0.1/", "amqp://127.0.0.1/"),
        ("amqp://u:pw@host:notaport/", "amqp://u:***@host:?/"),
        (
            "amqp://u:pw@node1:5672/,amqp://u:pw@node2:5673/?heartbeat=5",
            "amqp://u:***@node1:5672/,amqp://u:***@node2:5673/?heartbeat=5",
        ),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_a_node_list_is_split_at_each_url_and_not_inside_one() -> None:
    assert node_urls("amqp://a:5672/, amqp://b:5673/x?opt=1,2") == [
        "amqp://a:5672/",
        "amqp://b:5673/x?opt=1,2",
    ]
    assert node_urls("amqp://a/") == ["amqp://a/"]


def test_a_node_list_takes_amqp_urls_only() -> None:
    with pytest.raises(ConfigError, match="unsupported bus URL scheme 'memory'") as raised:
        open_bus("amqp://guest:s3cret@127.0.0.1:1/,memory://")
    assert "s3cret" not in str(raised.value)


def test_when_no_node_of_a_list_answers_the_bus_is_unavailable_without_passwords() -> None:
    with pytest.raises(BusUnavailableError, match="cannot connect") as raised:
        open_bus("amqp://guest:s3cret@127.0.0.1:1/,amqp://guest:s3cret@127.0.0.1:2/")
    assert "s3cret" not in str(raised.value)
    assert "127.0.0.1:1" in str(raised.value) and "127.0.0.1:2" in str(raised.value)
