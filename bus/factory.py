"""Open a bus connection from a URL: memory:// for the in-process bus, amqp:// or amqps:// for RabbitMQ."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from bus.namespace import NamespacedBus, check_namespace
from bus.port import Bus
from ground.errors import ConfigError
from ground.identity import DEFAULT_NAMESPACE

MEMORY_SCHEMES = frozenset({"memory"})
AMQP_SCHEMES = frozenset({"amqp", "amqps"})
# A comma that starts the next node's URL, so a comma inside one URL's query string is left alone.
_NODE_SEPARATOR = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9+.-]*://)")


def open_bus(url: str, namespace: str = DEFAULT_NAMESPACE) -> Bus:
    """Open a new connection (a Bus is not thread-safe: each thread opens its own).

    memory:// and memory://<name> share one in-process broker per name; amqp://user:pass@host:port/vhost
    connects to RabbitMQ (BusUnavailableError when it cannot), and several such URLs, comma-separated, to the
    first node of a cluster that answers. Any other scheme is a ConfigError. Under a
    namespace other than the default, exchange and queue names are the namespace's (bus.namespace).
    """
    if namespace == DEFAULT_NAMESPACE:
        return _open(url)
    # Checked before connecting, so a bad namespace leaves no connection open.
    check_namespace(namespace)
    return NamespacedBus(_open(url), namespace)


def _open(url: str) -> Bus:
    nodes = node_urls(url)
    schemes = {urlsplit(node).scheme.lower() for node in nodes}
    if len(nodes) == 1 and schemes <= MEMORY_SCHEMES:
        from bus.memory import open_memory_bus

        return open_memory_bus(url)
    if schemes <= AMQP_SCHEMES:
        from bus.rabbitmq import RabbitMQBus

        return RabbitMQBus(url)
    known = ", ".join(f"{name}://" for name in sorted(MEMORY_SCHEMES | AMQP_SCHEMES))
    unsupported = ", ".join(repr(scheme) for scheme in sorted(schemes - AMQP_SCHEMES))
    raise ConfigError(
        f"unsupported bus URL scheme {unsupported} in {redact_url(url)!r}; use one of {known} "
        "(several nodes: amqp:// URLs, comma-separated)"
    )


def node_urls(url: str) -> list[str]:
    """The URLs of a comma-separated list of broker nodes (one URL is a list of one)."""
    return [node.strip() for node in _NODE_SEPARATOR.split(url) if node.strip()] or [url]


def redact_url(url: str) -> str:
    """The URL (or each URL of a node list) with its password replaced, fit for logs and error messages."""
    nodes = node_urls(url)
    if len(nodes) > 1:
        return ",".join(redact_url(node) for node in nodes)
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
