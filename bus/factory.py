"""Open a bus connection from a URL: memory:// for the in-process bus, amqp:// or amqps:// for RabbitMQ."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from bus.namespace import NamespacedBus, check_namespace
from bus.port import Bus
from ground.errors import ConfigError
from ground.identity import DEFAULT_NAMESPACE

MEMORY_SCHEMES = frozenset({"memory"})
AMQP_SCHEMES = frozenset({"amqp", "amqps"})


def open_bus(url: str, namespace: str = DEFAULT_NAMESPACE) -> Bus:
    """Open a new connection (a Bus is not thread-safe: each thread opens its own).

    memory:// and memory://<name> share one in-process broker per name; amqp://user:pass@host:port/vhost
    connects to RabbitMQ (BusUnavailableError when it cannot). Any other scheme is a ConfigError. Under a
    namespace other than the default, exchange and queue names are the namespace's (bus.namespace).
    """
    if namespace == DEFAULT_NAMESPACE:
        return _open(url)
    # Checked before connecting, so a bad namespace leaves no connection open.
    check_namespace(namespace)
    return NamespacedBus(_open(url), namespace)


def _open(url: str) -> Bus:
    scheme = urlsplit(url).scheme.lower()
    if scheme in MEMORY_SCHEMES:
        from bus.memory import open_memory_bus

        return open_memory_bus(url)
    if scheme in AMQP_SCHEMES:
        from bus.rabbitmq import RabbitMQBus

        return RabbitMQBus(url)
    known = ", ".join(f"{name}://" for name in sorted(MEMORY_SCHEMES | AMQP_SCHEMES))
    raise ConfigError(f"unsupported bus URL scheme {scheme!r} in {redact_url(url)!r}; use one of {known}")


def redact_url(url: str) -> str:
    """The URL with its password replaced, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ":?"
    netloc = f"{parts.username or ''}:***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
