"""Which consumers the hub runs: each gets its own durable queue, parking lot and inbox."""

from __future__ import annotations

from adapters.marketing.outbound import default_codes
from feasibility.consumer import TOPICS as FEASIBILITY_TOPICS
from feasibility.consumer import handle_feasibility_event
from pipeline.consumers import ConsumerSpec
from subscriptions.feed import feed_topics, record_feed_event
from workflow.caselog import record_case_event
from workflow.cases import handle_event
from workflow.grid import handle_grid_event
from workflow.loads import handle_load_event
from workflow.writeback import WritebackHandler, writeback_topics

# The write-back rules, in the marketing system's terms as its adapter knows them.
handle_writeback = WritebackHandler(default_codes)

CONSUMERS: tuple[ConsumerSpec, ...] = (
    # Applications, customers, and transformer changes that may resolve a consistency finding.
    ConsumerSpec("workflow", ("application.#", "customer.#", "projection.grid.transformer"), handle_event),
    # The hub's own case events (stage changes, assignments, alerts) as a notification and audit feed.
    ConsumerSpec("case_feed", ("case.#",), record_case_event),
    # Grid equipment from PMS (and any further grid source) into the projection the API reads.
    ConsumerSpec("grid", ("grid.#",), handle_grid_event),
    # Measured load from the dispatch and metering file feeds into the load projection the API reads.
    ConsumerSpec("loads", ("load.#",), handle_load_event),
    # Stage changes (and other results) the hub writes back into the marketing system, queued for its writer.
    ConsumerSpec("marketing_writeback", writeback_topics(), handle_writeback),
    # Supply feasibility of applications, re-run when their grid or load changes; binds its own results too.
    ConsumerSpec("feasibility", FEASIBILITY_TOPICS, handle_feasibility_event),
)
# Every event some consumer reads also goes into the event feed that SSE clients and webhooks are served from.
EVENT_FEED = ConsumerSpec(
    "event_feed", feed_topics(topic for spec in CONSUMERS for topic in spec.topics), record_feed_event
)
CONSUMERS = (*CONSUMERS, EVENT_FEED)
