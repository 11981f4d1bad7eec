"""Tests of workflow/writeback.py: which stage changes and feasibility results go back to marketing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from adapters.marketing.outbound import NoLegacyCodeError, default_codes
from canonical_model.envelope import CloudEvent
from canonical_model.events import CASE_ASSIGNED, CASE_STAGE_CHANGED, FEASIBILITY_ASSESSED
from ground.errors import InvalidRecordError, SchemaViolationError
from pipeline.decoded import DecodedEvent
from store.submissions import marketing_writebacks, writebacks_of
from workflow.writeback import (
    WRITEBACK_RULES,
    WritebackHandler,
    feasibility_arguments,
    stage_change_arguments,
    writeback_topics,
)
from yekuo.consumers import handle_writeback


def _stage_changed(event_id: str = "e-1", **changes: Any) -> CloudEvent:
    data = {
        "application_no": "2611200001234",
        "position": 1,
        "at": "2026-12-01T01:30:00Z",
        "kind": "forward",
        "stage_from": "acceptance",
        "stage_to": "energisation",
        "visit": "energisation#1",
        "source_system": "pms",
        "source_event_id": "pms-7",
        "responsible": "41401",
        "note": None,
    }
    data.update(changes)
    return CloudEvent(
        id=event_id,
        source="/hub/workflow",
        type=CASE_STAGE_CHANGED,
        subject="2611200001234",
        time=datetime(2026, 12, 1, 1, 30, tzinfo=UTC),
        dataschema="urn:yekuo:schema:stage_transition.v1",
        correlationid="c-1",
        sequence=1,
        data=data,
    )


def test_a_stage_reported_by_another_system_is_written_back() -> None:
    assert stage_change_arguments(DecodedEvent(_stage_changed()), default_codes()) == {
        "requestId": "e-1",
        "appNo": "2611200001234",
        "statusCode": "09",
        "changedAt": "2026-12-01 09:30:00",
        "remark": "reported by pms",
        "operator": "41401",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"source_system": "marketing"},
        {"source_system": "hub"},
        {"kind": "opened", "stage_from": None},
        {"kind": "first_seen"},
        {"kind": "flow_changed"},
    ],
    ids=["from-marketing", "from-the-hub", "opened", "first-seen", "flow-changed"],
)
def test_what_the_marketing_system_knows_already_is_not_written_back(changes: dict[str, Any]) -> None:
    assert stage_change_arguments(DecodedEvent(_stage_changed(**changes)), default_codes()) is None


def test_a_stage_without_a_status_code_is_invalid() -> None:
    with pytest.raises(NoLegacyCodeError, match="field 'stage_to': no code in table marketing/status_code"):
        stage_change_arguments(DecodedEvent(_stage_changed(stage_to="meter_check")), default_codes())
    with pytest.raises(SchemaViolationError, match="is not a valid StageTransition"):
        stage_change_arguments(DecodedEvent(_stage_changed(kind="teleported")), default_codes())


def test_the_handler_queues_each_event_once(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        handle_writeback(conn, DecodedEvent(_stage_changed("e-1")))
        handle_writeback(conn, DecodedEvent(_stage_changed("e-1")))
        handle_writeback(conn, DecodedEvent(_stage_changed("e-2", source_system="marketing")))
    with sqlite_engine.connect() as conn:
        [row] = writebacks_of(conn, "2611200001234")
        count = conn.execute(sa.select(sa.func.count()).select_from(marketing_writebacks)).scalar_one()
    assert count == 1
    assert (row["event_id"], row["operation"], row["status"], row["attempts"]) == (
        "e-1",
        "UpdateApplicationStage",
        "pending",
        0,
    )
    assert row["arguments"]["statusCode"] == "09"


def test_an_event_type_without_a_rule_is_invalid(sqlite_engine: Engine) -> None:
    handler = WritebackHandler(default_codes, rules={})
    with sqlite_engine.begin() as conn, pytest.raises(InvalidRecordError, match="no rule for"):
        handler(conn, DecodedEvent(_stage_changed()))


def test_the_consumer_binds_the_routing_keys_of_its_rules() -> None:
    assert writeback_topics() == ("case.stage_changed.#", "feasibility.assessed.#")
    assert CASE_ASSIGNED not in WRITEBACK_RULES


def _assessed(application_no: str | None = "2611200001234", **changes: Any) -> CloudEvent:
    data: dict[str, Any] = {
        "province": "henan",
        "assessed_at": "2026-12-01T02:00:00Z",
        "requested_capacity_kva": 630.0,
        "verdict": "feasible_with_conditions",
        "recommended_voltage_kv": 10.0,
        "reserved_kva": 630.0,
        **changes,
    }
    if application_no is not None:
        data["application_no"] = application_no
    return CloudEvent(
        id="f-1",
        source="/hub/feasibility",
        type=FEASIBILITY_ASSESSED,
        subject=application_no or "preview",
        time=datetime(2026, 12, 1, 2, tzinfo=UTC),
        dataschema="urn:yekuo:schema:feasibility_assessment.v1",
        correlationid="c-1",
        sequence=1,
        data=data,
    )


def test_a_feasibility_assessment_is_recorded_in_the_marketing_system() -> None:
    assert feasibility_arguments(DecodedEvent(_assessed()), default_codes()) == {
        "requestId": "f-1",
        "appNo": "2611200001234",
        "verdict": "02",
        "supplyVoltCode": "AC00101",
        "assessedAt": "2026-12-01 10:00:00",
        "remark": "feasible_with_conditions; reserved 630 kVA",
    }


def test_a_voltage_without_a_volt_code_goes_into_the_remark() -> None:
    arguments = feasibility_arguments(
        DecodedEvent(_assessed(recommended_voltage_kv=20.0, verdict="not_feasible")), default_codes()
    )
    assert arguments is not None
    assert (arguments["verdict"], arguments["supplyVoltCode"]) == ("04", None)
    assert arguments["remark"] == "not_feasible; reserved 630 kVA; recommended 20 kV (no VOLT_CODE)"


def test_the_remark_keeps_the_applicants_result_apart_from_the_existing_grid() -> None:
    finding = {
        "equipment_id": "XL000001",
        "kind": "feeder",
        "rule": "feeder_n_minus_1",
        "max_load_rate": 0.5,
        "load_rate_before": 0.645,
        "shortfall_before_kva": 1218.1,
        "increment_kva": 3.2,
        "note": "planning",
    }
    fix = {"equipment_id": "PB0000001", "kind": "distribution_transformer", "reason": "transformer_load_rate"}
    arguments = feasibility_arguments(
        DecodedEvent(
            _assessed(
                verdict="needs_reinforcement",
                reserved_kva=0.0,
                increment_kva=3.2,
                reinforcement=[{**fix, "shortfall_kva": 1.5}],
                existing_grid=[finding],
            )
        ),
        default_codes(),
    )
    assert arguments is not None
    assert arguments["verdict"] == "03"
    assert arguments["remark"] == (
        "needs_reinforcement; reserved 0 kVA; request adds 3.2 kVA; caused by the request: "
        "transformer_load_rate PB0000001 short 1.5 kVA; existing grid (planning): feeder_n_minus_1 "
        "XL000001 at 64.5% > 50.0% short 1218.1 kVA"
    )


def test_an_existing_overload_that_blocks_the_connection_says_so() -> None:
    finding = {
        "equipment_id": "PB0000022",
        "kind": "distribution_transformer",
        "rule": "transformer_load_rate",
        "max_load_rate": 0.8,
        "load_rate_before": 1.5,
        "shortfall_before_kva": 70.0,
        "note": "planning",
        "blocks_connection": True,
    }
    arguments = feasibility_arguments(
        DecodedEvent(
            _assessed(verdict="not_feasible", reserved_kva=0.0, increment_kva=3.2, existing_grid=[finding])
        ),
        default_codes(),
    )
    assert arguments is not None
    assert arguments["verdict"] == "04"
    assert arguments["remark"] == (
        "not_feasible; reserved 0 kVA; request adds 3.2 kVA; existing grid (planning): transformer_load_rate "
        "PB0000022 at 150.0% > 80.0% short 70 kVA, blocks connection until reinforced"
    )


def test_insufficient_data_has_its_own_legacy_code() -> None:
    arguments = feasibility_arguments(
        DecodedEvent(_assessed(verdict="insufficient_data", reserved_kva=0.0)), default_codes()
    )
    assert arguments is not None
    assert arguments["verdict"] == "05"


def test_no_capacity_check_has_its_own_legacy_code() -> None:
    arguments = feasibility_arguments(
        DecodedEvent(_assessed(verdict="no_capacity_check", reserved_kva=0.0)), default_codes()
    )
    assert arguments is not None
    assert arguments["verdict"] == "06"


def test_a_preview_without_an_application_is_not_written_back(sqlite_engine: Engine) -> None:
    assert feasibility_arguments(DecodedEvent(_assessed(None)), default_codes()) is None
    with sqlite_engine.begin() as conn:
        handle_writeback(conn, DecodedEvent(_assessed(None)))
        handle_writeback(conn, DecodedEvent(_assessed()))
    with sqlite_engine.connect() as conn:
        [row] = writebacks_of(conn, "2611200001234")
    assert (row["operation"], row["arguments"]["verdict"]) == ("RecordFeasibilityResult", "02")
