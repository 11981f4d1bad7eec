"""Which consumers the hub runs: each gets its own durable queue, parking lot and inbox."""

from __future__ import annotations

from adapters.marketing.outbound import default_codes
from feasibility.consumer import (
    ASSESSING_TYPES,
    drain_feasibility_rechecks,
    handle_feasibility_event,
    keys_of_feasibility_event,
)
from feasibility.consumer import TOPICS as FEASIBILITY_TOPICS
from pipeline.consumer import KeyedHandler, subject_keys
from pipeline.consumers import ConsumerSpec
from subscriptions.feed import feed_topics, record_feed_event
from workflow.caselog import record_case_event
from workflow.cases import handle_event, keys_of_event
from workflow.grid import handle_grid_event
from workflow.loads import handle_load_event
from workflow.writeback import WritebackHandler, writeback_topics

# The write-back rules, in the marketing system's terms as its adapter knows them.
handle_writeback = WritebackHandler(default_codes)

# Every consumer locks the ids of the events it applies (pipeline/consumer.py); the keyed handlers also lock
# what the events change, so competing consumers on several instances apply one case (or customer, or
# piece of equipment) at a time, in the order their transactions take the lock.
CONSUMERS: tuple[ConsumerSpec, ...] = (
    # Applications, customers, and transformer changes that may resolve a consistency finding.
    ConsumerSpec(
        "workflow",
        ("application.#", "customer.#", "projection.grid.transformer"),
        KeyedHandler(handle_event, keys_of_event),
    ),
    # The hub's own case events (stage changes, assignments, alerts) as a notification and audit feed.
    ConsumerSpec("case_feed", ("case.#",), record_case_event),
    # Grid equipment from PMS (and any further grid source) into the projection the API reads.
    ConsumerSpec("grid", ("grid.#",), KeyedHandler(handle_grid_event, subject_keys("grid.equipment"))),
    # Measured load from the dispatch and metering file feeds into the load projection the API reads.
    ConsumerSpec("loads", ("load.#",), KeyedHandler(handle_load_event, subject_keys("loads.equipment"))),
    # Stage changes (and other results) the hub writes back into the marketing system, queued for its writer.
    ConsumerSpec("marketing_writeback", writeback_topics(), handle_writeback),
    # Supply feasibility of applications, re-checked when their grid, load or customer changes; binds its own
    # results too. An event that assesses commits alone: its capacity locks are never held across another's
    # work. The changes only mark applications due; the deferred step re-checks them in bounded batches.
    ConsumerSpec(
        "feasibility",
        FEASIBILITY_TOPICS,
        KeyedHandler(handle_feasibility_event, keys_of_feasibility_event, alone_types=ASSESSING_TYPES),
        deferred=drain_feasibility_rechecks,
    ),
)
# Every event some consumer reads also goes into the event feed that SSE clients and webhooks are served from.
EVENT_FEED = ConsumerSpec(
    "event_feed", feed_topics(topic for spec in CONSUMERS for topic in spec.topics), record_feed_event
)
CONSUMERS = (*CONSUMERS, EVENT_FEED)
