"""What each piece of equipment may carry, by the feasibility rules the checks apply to it.

The rates come from the rule set and feasibility.engine's own functions, so planning alerts and
feasibility checks never disagree on a limit: a distribution transformer its load-rate limit, a feeder
its planning limit or, where its area class requires N-1 and it has ties, its N-1 limit k/(k+1), and a
substation its main transformers' N-1 limit (or their load-rate limit where N-1 cannot apply).
Equipment whose capacity is unknown has no limit, so no alert: the feasibility check already reports it
as insufficient data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from feasibility.config import Rules
from feasibility.engine import (
    FEEDER,
    SUBSTATION,
    TRANSFORMER,
    GridArea,
    feeder_rate_limit,
    main_transformer_rate_limit,
)


@dataclass(frozen=True)
class Limit:
    """The load rate an equipment may reach, the rule it comes from, and the capacity it applies to."""

    rule: str
    rate: float
    capacity_kva: float

    @property
    def limit_kva(self) -> float:
        """The highest peak the equipment may carry."""
        return self.capacity_kva * self.rate


def limit_of(area: GridArea, rules: Rules, kind: str, equipment_id: str) -> Limit | None:
    """The equipment's limit, None when its capacity is unknown or it is not in the grid."""
    if kind == TRANSFORMER:
        transformer = area.transformers.get(equipment_id)
        if transformer is None or not transformer.rated_kva:
            return None
        return Limit("transformer_load_rate", rules.dt_load_rate, transformer.rated_kva)
    if kind == FEEDER:
        feeder = area.feeders.get(equipment_id)
        if feeder is None or not feeder.allowed_current_a or not feeder.voltage_kv:
            return None
        rate, rule = feeder_rate_limit(rules, area, feeder)
        return Limit(rule, rate, math.sqrt(3) * feeder.voltage_kv * feeder.allowed_current_a)
    if kind == SUBSTATION:
        station = area.substations.get(equipment_id)
        units = area.main_transformers.get(equipment_id, [])
        capacity = sum(unit.rated_kva or 0.0 for unit in units)
        if station is None or capacity <= 0:
            return None
        rate, rule = main_transformer_rate_limit(rules, len(units), rules.n1_policy(station.area_class))
        return Limit(rule, rate, capacity)
    return None
