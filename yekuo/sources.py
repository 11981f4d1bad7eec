"""The legacy systems the hub reads, as declared: one registry of adapter kinds, each built the same way.

An entry of the settings' sources (ground.settings.SourceSettings) names its adapter kind; the kind says
what the entry's settings must hold and which factory of its adapter package's wiring module builds it.
A further legacy system takes its adapter package (with such a factory), its mappings and routes, and one
line here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import pydantic
from sqlalchemy.engine import Engine

from adapters.dispatch.wiring import dispatch_parts
from adapters.marketing.wiring import marketing_parts
from adapters.pms.wiring import pms_parts
from ground.errors import ConfigError
from ground.settings import (
    DISPATCH_DROPFOLDER,
    MARKETING_SOAP,
    PMS_DB,
    DispatchSettings,
    MarketingSettings,
    PmsSettings,
    SourceSettings,
)
from pipeline.records import SourceParts
from routes.table import Route


class SourceFactory(Protocol):
    """Builds one declared source over the hub database, with the hub's routes."""

    def __call__(self, entry: SourceSettings, engine: Engine, routes: Sequence[Route]) -> SourceParts: ...


@dataclass(frozen=True)
class AdapterKind:
    """An adapter kind: the model an entry's settings must satisfy, and the factory that builds it.

    single: at most one entry of the kind per hub, because its adapter keeps state under its system's name
    (the marketing push inbox and writer; the dispatch feed's loop and file log).
    """

    settings: type[pydantic.BaseModel]
    build: SourceFactory
    single: bool = False


SOURCE_KINDS: Mapping[str, AdapterKind] = {
    MARKETING_SOAP: AdapterKind(MarketingSettings, marketing_parts, single=True),
    PMS_DB: AdapterKind(PmsSettings, pms_parts),
    DISPATCH_DROPFOLDER: AdapterKind(DispatchSettings, dispatch_parts, single=True),
}


def source_problems(
    entries: Sequence[SourceSettings], kinds: Mapping[str, AdapterKind] = SOURCE_KINDS
) -> list[str]:
    """What is wrong with the declared sources, one line each naming the entry; empty when nothing is."""
    problems = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"sources[{index}] ({entry.name})"
        kind = kinds.get(entry.kind)
        if kind is None:
            known = ", ".join(sorted(kinds))
            problems.append(f"{where}: unknown adapter kind {entry.kind!r}; known kinds: {known}")
            continue
        if kind.single and entry.kind in seen:
            problems.append(f"{where}: a hub reads one {entry.kind} source; this is a second one")
        seen.add(entry.kind)
        try:
            kind.settings.model_validate(entry.settings)
        except pydantic.ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"])
                problems.append(f"{where}: {entry.kind} setting {field or '(all)'}: {error['msg']}")
    return problems


def build_sources(
    entries: Sequence[SourceSettings],
    engine: Engine,
    routes: Sequence[Route],
    kinds: Mapping[str, AdapterKind] = SOURCE_KINDS,
) -> list[SourceParts]:
    """Every declared source built by its kind's factory; ConfigError naming each bad entry first."""
    problems = source_problems(entries, kinds)
    if problems:
        raise ConfigError("declared sources: " + "; ".join(problems))
    return [kinds[entry.kind].build(entry, engine, routes) for entry in entries]
