"""`yekuo forecast run` and `yekuo report forecast` over the seeded grid of tests/unit/forecast/grid.py."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine

from canonical_model.planning import CapacityForecastAlert, ForecastBand
from forecast.report import render_forecast_report
from ground import clock
from tests.unit.forecast.grid import NOW, reserve_on_t1, seed_grid
from yekuo.cli import main


def _alert(equipment_id: str, month: str, kind: str = "feeder") -> CapacityForecastAlert:
    return CapacityForecastAlert(
        equipment_id=equipment_id,
        equipment_kind=kind,
        crossing_month=month,
        months_ahead=3,
        limit_rule="feeder_load_rate",
        limit_rate=0.7,
        capacity_kva=8400.4,
        limit_kva=5880.3,
        peak_kva=6000.0,
        measured_kva=5000.0,
        pipeline_kva=1000.0,
        pipeline_share=0.1667,
        intervals=[ForecastBand(level=80, lower_kva=5900.0, upper_kva=6100.0)],
        model="MSTL(12)+ETS(A,N,N)",
        province="default",
        forecast_at=NOW,
    )


def test_the_report_lists_the_alerts_by_crossing_month_then_equipment() -> None:
    text = render_forecast_report(
        [_alert("XL9", "2027-07"), _alert("XL5", "2027-07"), _alert("XL7", "2026-12")]
    )
    assert [line.split()[1] for line in text.splitlines()[1:4]] == ["XL7", "XL5", "XL9"]
    assert text.splitlines()[-1] == "3 equipment forecast to exceed its limit"


def test_an_empty_report_says_so() -> None:
    assert render_forecast_report([]) == "no equipment is forecast to exceed its limit\n"


def test_forecast_run_then_report_forecast_print_the_refresh_and_the_alert(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite_engine.begin() as conn:
        seed_grid(conn)
        reserve_on_t1(conn, "A1", 100, date(2026, 5, 20))
    url = str(sqlite_engine.url)
    with clock.use(lambda: NOW):
        assert main(["forecast", "run", "--db-url", url]) == 0
    assert capsys.readouterr().out == (
        "forecast refresh: 3 equipment: 2 forecast, 1 with too little history, 0 the model could not fit, "
        "0 without a known capacity; alerts: 1 raised, 0 unchanged, 0 cleared; 1490 daily peaks read\n"
    )
    assert main(["report", "forecast", "--db-url", url]) == 0
    header, row, total = capsys.readouterr().out.splitlines()
    assert header.split() == [
        "equipment",
        "month",
        "limit",
        "forecast",
        "peak",
        "kVA",
        "interval",
        "pipeline",
    ]
    # 300 kVA measured + 60 kVA pipeline in May 2026 against 80% of 400 kVA; 60 / 360 = 17%.
    assert row.split() == [
        "transformer", "T1", "2026-05", "80%", "of", "400.0", "=", "320.0", "kVA", "360.0",
        "95%:", "360.0-360.0", "17%", "(60.0", "kVA)",
    ]  # fmt: skip
    assert total == "1 equipment forecast to exceed its limit"


def test_forecast_run_refuses_a_province_without_rules(
    sqlite_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["forecast", "run", "--db-url", str(sqlite_engine.url), "--province", "atlantis"]) == 2
    assert "forecast province 'atlantis' has no rule set" in capsys.readouterr().err
