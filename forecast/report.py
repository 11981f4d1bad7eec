"""`yekuo report forecast`: the planning alerts raised by the latest refreshes, by crossing month."""

from __future__ import annotations

from collections.abc import Sequence

from canonical_model.planning import CapacityForecastAlert

HEADER = ("equipment", "month", "limit", "forecast peak kVA", "interval", "pipeline")


def _row(alert: CapacityForecastAlert) -> tuple[str, ...]:
    # The widest interval shown: planning asks how bad it may get, not the most likely figure alone.
    band = max(alert.intervals, key=lambda item: item.level, default=None)
    interval = f"{band.level}%: {band.lower_kva:.1f}-{band.upper_kva:.1f}" if band else "-"
    return (
        f"{alert.equipment_kind} {alert.equipment_id}",
        alert.crossing_month,
        f"{alert.limit_rate:.0%} of {alert.capacity_kva:.1f} = {alert.limit_kva:.1f} kVA",
        f"{alert.peak_kva:.1f}",
        interval,
        f"{alert.pipeline_share:.0%} ({alert.pipeline_kva:.1f} kVA)",
    )


def render_forecast_report(alerts: Sequence[CapacityForecastAlert]) -> str:
    """A plain-text table of the alerts, sorted by crossing month then equipment id."""
    if not alerts:
        return "no equipment is forecast to exceed its limit\n"
    ordered = sorted(alerts, key=lambda alert: (alert.crossing_month, alert.equipment_id))
    rows = [HEADER, *(_row(alert) for alert in ordered)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(HEADER))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.append(f"{len(ordered)} equipment forecast to exceed its limit")
    return "\n".join(lines) + "\n"
