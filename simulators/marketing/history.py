"""Several years of applications with a known truth, for the demand forecast and the EV-growth analysis.

Customers and applications are drawn as seed.py draws them (classes, capacities, trades, supply units);
what the history adds, every parameter here:
- volume: year k (0 for the first) has round(PER_YEAR x (1 + APPLICATION_GROWTH)^k) applications, their
  acceptance times spread evenly at random over the year, each last changed up to 20 days later (the
  list is in change order, as the marketing system's);
- EV-charging adoption: of the residential new connections and capacity increases accepted in year k, a
  share EV_SHARE_FIRST_YEAR x (1 + EV_ADOPTION_GROWTH)^k (at most 1) state LOAD_TYPE "01" (charging pile),
  by a draw of their own keyed by APP_NO. The EV applications of a year therefore grow by
  (1 + APPLICATION_GROWTH) x (1 + EV_ADOPTION_GROWTH) - 1 = 68% a year, in number and, their capacities
  being drawn alike every year, in kVA. Other applications keep seed.py's load type, charging piles
  excepted (they are this adoption's alone).

Draws come from Random streams of their own (seed/"history/..."), so generate_world's worlds stay the same.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from ground.errors import ConfigError
from simulators.marketing.seed import _Generator
from simulators.marketing.world import (
    LEGACY_TIME_FORMAT,
    ApplicationRow,
    CustomerRow,
    MarketingWorld,
    status_flow,
)

PER_YEAR = 1000
APPLICATION_GROWTH = 0.05
EV_SHARE_FIRST_YEAR = 0.05
EV_ADOPTION_GROWTH = 0.6
EV_LOAD_TYPE = "01"
_LAST_CHANGE_DAYS = 20
_EV_CLASS = "01"  # residential
_EV_BUSINESS = frozenset({"101", "111"})  # new connections and capacity increases bring new equipment


def ev_share(year_index: int) -> float:
    """The share of residential new connections and increases that are charging piles in year k."""
    return min(1.0, EV_SHARE_FIRST_YEAR * (1.0 + EV_ADOPTION_GROWTH) ** year_index)


def generate_history(
    seed: int, customers: int, first_year: int, years: int, *, per_year: int = PER_YEAR
) -> tuple[list[CustomerRow], list[ApplicationRow]]:
    """Customers and `years` years of applications from 1 January of first_year, oldest first."""
    if customers < 1 or years < 1 or per_year < 1:
        raise ConfigError(
            f"a history needs customers, years and applications a year of at least 1: "
            f"{customers}, {years}, {per_year}"
        )
    start = datetime(first_year, 1, 1)
    generator = _Generator(seed, start)
    classified = [
        generator.customer(f"413{number:07d}", str(900_000_000 + index))
        for index, number in enumerate(generator.rng.sample(range(10**7), customers))
    ]
    times = random.Random(f"{seed}/history/times")
    accepted: list[datetime] = []
    for k in range(years):
        begin, end = datetime(first_year + k, 1, 1), datetime(first_year + k + 1, 1, 1)
        seconds = int((end - begin).total_seconds())
        count = round(per_year * (1.0 + APPLICATION_GROWTH) ** k)
        accepted += [begin + timedelta(seconds=times.randrange(seconds)) for _ in range(count)]
    applications: list[ApplicationRow] = []
    for sequence, handled in enumerate(sorted(accepted), start=1):
        customer, cust_class = times.choice(classified)
        updated = handled + timedelta(seconds=times.randrange(_LAST_CHANGE_DAYS * 86400))
        row = generator.application(sequence, customer, cust_class, updated)
        # The generator draws acceptance back from the change; here acceptance is drawn first, so each year
        # holds its volume, and what depends on it follows.
        row["APP_NO"] = f"{handled:%y%m%d}{sequence:07d}"
        row["HANDLE_TIME"] = handled.strftime(LEGACY_TIME_FORMAT)
        if row["TEMP_END_DATE"] is not None:
            row["TEMP_END_DATE"] = f"{(handled + timedelta(days=180)):%Y-%m-%d}"
        flow = status_flow(row)
        row["STATUS_CODE"] = flow[
            min((updated - handled).days * len(flow) // _LAST_CHANGE_DAYS, len(flow) - 1)
        ]
        if row["LOAD_TYPE"] == EV_LOAD_TYPE:
            row["LOAD_TYPE"] = "00"
        if cust_class == _EV_CLASS and row["BUSI_TYPE_CODE"] in _EV_BUSINESS:
            roll = random.Random(f"{seed}/history/ev/{row['APP_NO']}").random()
            if roll < ev_share(handled.year - first_year):
                row["LOAD_TYPE"] = EV_LOAD_TYPE
        applications.append(row)
    applications.sort(key=lambda row: row["UPDATE_TIME"])
    return [customer for customer, _ in classified], applications


def history_world(seed: int, customers: int, years: int, per_year: int, *, this_year: int) -> MarketingWorld:
    """A world of the `years` complete years before this_year (`yekuo sim marketing --history-years`)."""
    return MarketingWorld(*generate_history(seed, customers, this_year - years, years, per_year=per_year))
