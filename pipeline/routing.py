"""The router: turns one raw legacy record into the event drafts its routes call for."""

from __future__ import annotations

import copy
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence
from typing import Any

from canonical_model.registry import schema_uri
from ground.errors import ConfigError, InvalidRecordError
from mappings.engine import Mapping
from pipeline.records import EventDraft, RawRecord
from routes.table import Route


class NoRouteError(InvalidRecordError):
    """No route takes records of this system and record type; the record is parked."""

    reason_code = "no_route"

    def __init__(self, system: str, record_type: str) -> None:
        self.system = system
        self.record_type = record_type
        super().__init__(f"no route for {system}/{record_type}")


class Router:
    """Finds the routes of a record, applies their mappings and fills their keys."""

    def __init__(self, routes: Sequence[Route], mappings: AbcMapping[str, Mapping]) -> None:
        self._routes = tuple(routes)
        self._mappings = dict(mappings)
        self._by_source: dict[tuple[str, str], list[Route]] = {}
        for route in self._routes:
            if route.mapping not in self._mappings:
                raise ConfigError(
                    f"route {route.name!r} uses unknown mapping {route.mapping!r}",
                    file=route.file,
                    line=route.line,
                )
            self._by_source.setdefault((route.source_system, route.record_type), []).append(route)

    @property
    def routes(self) -> tuple[Route, ...]:
        """Every route, in table order."""
        return self._routes

    def routes_for(self, system: str, record_type: str) -> tuple[Route, ...]:
        """The routes that take records of this system and type (possibly none)."""
        return tuple(self._by_source.get((system, record_type), ()))

    def route(self, record: RawRecord) -> list[EventDraft]:
        """The events a record becomes, one per matching route.

        Raises NoRouteError when no route matches, MappingError or SchemaViolationError when the
        record cannot be mapped; all are InvalidRecordError, so the caller parks the record.
        """
        routes = self.routes_for(record.system, record.record_type)
        if not routes:
            raise NoRouteError(record.system, record.record_type)
        mapped: dict[str, dict[str, Any]] = {}
        events = []
        for route in routes:
            mapping = self._mappings[route.mapping]
            if mapping.name in mapped:
                # Each event owns its data, so a consumer changing one cannot change another.
                data = copy.deepcopy(mapped[mapping.name])
            else:
                data = mapped[mapping.name] = mapping.apply(record.payload)
            events.append(
                EventDraft(
                    event_type=route.event_type,
                    exchange=route.exchange,
                    routing_key=route.routing_key.render(data),
                    subject=route.subject.render(data),
                    dataschema=schema_uri(mapping.schema_name),
                    source=f"/{record.system}/{record.record_type}",
                    data=data,
                    route=route.name,
                )
            )
        return events
