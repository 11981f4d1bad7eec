"""The marketing adapter's parts built from the settings: one client (one circuit breaker) shared by the
poller and the writer, so both see the marketing system as up or down together; as a declared source
(kind marketing_soap), the poller and the writer's loop."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from adapters.marketing.breaker import CircuitBreaker
from adapters.marketing.client import CallPolicy, MarketingClient
from adapters.marketing.source import MarketingSource
from adapters.marketing.status import MarketingStatus
from adapters.marketing.writer import MarketingWriter, WriterPolicy
from ground.settings import MarketingSettings, SourceSettings
from pipeline.records import SourceParts
from routes.table import Route


@dataclass(frozen=True)
class MarketingAdapter:
    """The marketing system's client, poller (with the push inbox) and writer."""

    client: MarketingClient
    source: MarketingSource
    writer: MarketingWriter

    @property
    def writer_loop(self) -> tuple[str, Callable[[], bool]]:
        """The writer as a hub loop: its name and its step."""
        return (f"write:{self.writer.name}", self.writer.step)

    def status(self, loops: Callable[[], Mapping[str, Any]] | None = None) -> MarketingStatus:
        """The admin status report of these parts."""
        return MarketingStatus(source=self.source, writer=self.writer, loops=loops)


def build_marketing(settings: MarketingSettings, engine: Engine) -> MarketingAdapter:
    """The marketing adapter configured by settings, over the hub database."""
    client = MarketingClient(
        settings.wsdl_url,
        timeout_s=settings.timeout_s,
        policy=CallPolicy(
            attempts=settings.retry_attempts,
            initial_backoff_s=settings.retry_initial_s,
            max_backoff_s=settings.retry_max_s,
        ),
        breaker=CircuitBreaker(
            "marketing", failure_threshold=settings.breaker_failures, reset_timeout_s=settings.breaker_reset_s
        ),
        wsdl_cache_path=settings.wsdl_cache_path,
        max_response_bytes=settings.max_response_bytes,
    )
    source = MarketingSource(
        settings.wsdl_url,
        page_size=settings.page_size,
        client=client,
        engine=engine,
        push_batch=settings.push_batch,
    )
    writer = MarketingWriter(
        engine,
        client,
        policy=WriterPolicy(
            initial_backoff_s=settings.write_initial_backoff_s,
            max_backoff_s=settings.write_max_backoff_s,
            max_attempts=settings.write_max_attempts,
        ),
    )
    return MarketingAdapter(client, source, writer)


def marketing_parts(entry: SourceSettings, engine: Engine, routes: Sequence[Route]) -> SourceParts:
    """A declared marketing_soap source: the poller with its push inbox, and the writer as a further loop.

    The marketing adapter reads and writes the marketing system's own protocol, so it takes no route.
    """
    settings = MarketingSettings.model_validate(entry.settings)
    adapter = build_marketing(settings, engine)
    return SourceParts(
        entry.name,
        poll=adapter.source,
        idle_s=entry.poll_interval_s or settings.poll_interval_s,
        loops=(adapter.writer_loop,),
        adapter=adapter,
    )
