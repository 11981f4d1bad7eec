"""The hub's Prometheus registry and the counters its loops increment.

Counters live on REGISTRY, a registry this module owns (not prometheus_client's global one), so tests
read them with REGISTRY.get_sample_value() and nothing else in the process can clash with their names.
The gauges measured at scrape time are api/metrics.py's HubMetrics, which exposes this registry too.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = [
    "AUTH_FAILURES",
    "CONSUMER_DUPLICATES",
    "CONSUMER_HANDLED",
    "CONSUMER_INVALID",
    "CONSUMER_PARKED",
    "CONSUMER_RETRIES",
    "CONTENT_TYPE",
    "INGEST_INVALID",
    "INGEST_RECORDS",
    "OUTBOX_PUBLISHED",
    "OUTBOX_PUBLISH_FAILURES",
    "REGISTRY",
]

# The text format generate_latest() writes, whatever the library's newest negotiated format is.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

REGISTRY = CollectorRegistry(auto_describe=True)

OUTBOX_PUBLISHED = Counter(
    "yekuo_outbox_published",
    "Outbox events the broker confirmed (publisher confirms); its rate is the publish rate.",
    registry=REGISTRY,
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "yekuo_outbox_publish_failures",
    "Outbox events whose publish failed, by error class; they stay in the outbox and are retried.",
    ["error"],
    registry=REGISTRY,
)
INGEST_RECORDS = Counter(
    "yekuo_ingest_records",
    "Legacy records routed by ingest, by source system (a poll whose commit fails counts again).",
    ["system"],
    registry=REGISTRY,
)
INGEST_INVALID = Counter(
    "yekuo_ingest_invalid",
    "Legacy records parked as invalid at ingest, by source system and reason code.",
    ["system", "reason"],
    registry=REGISTRY,
)
CONSUMER_HANDLED = Counter(
    "yekuo_consumer_handled",
    "Events a consumer applied (first delivery of an event id).",
    ["consumer"],
    registry=REGISTRY,
)
CONSUMER_RETRIES = Counter(
    "yekuo_consumer_retries",
    "Failed deliveries a consumer sent to a retry queue.",
    ["consumer"],
    registry=REGISTRY,
)
CONSUMER_PARKED = Counter(
    "yekuo_consumer_parked",
    "Messages a consumer gave up on after its last retry (sent to its parking queue).",
    ["consumer"],
    registry=REGISTRY,
)
CONSUMER_INVALID = Counter(
    "yekuo_consumer_invalid",
    "Messages a consumer parked as invalid straight away (not a CloudEvent, schema failure).",
    ["consumer"],
    registry=REGISTRY,
)
CONSUMER_DUPLICATES = Counter(
    "yekuo_consumer_duplicates",
    "Deliveries a consumer skipped because the event id was already in its inbox.",
    ["consumer"],
    registry=REGISTRY,
)
AUTH_FAILURES = Counter(
    "yekuo_api_auth_failures",
    "API requests access control refused, by status and reason: 401 with missing, malformed, invalid or "
    "expired credentials, 403 with the permission the caller lacked.",
    ["status", "reason"],
    registry=REGISTRY,
)
