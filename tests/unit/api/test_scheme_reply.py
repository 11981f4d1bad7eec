"""The supply-scheme reply form: a Chinese PDF whose text pdftotext reads back and pdftoppm draws, the
customer's name masked without pii:read, and a template a province overrides without code.

pdftotext and pdftoppm come from Debian's poppler-utils (`make tools`). Without them the PDF tests are
skipped locally, with the reason; in CI (CI set) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess  # nosec B404 - runs the poppler tools on files the test wrote
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.scheme_reply import load_reply_template, render_reply, reply_fields
from canonical_model.feasibility import FeasibilityAssessment
from canonical_model.pii import mask_name
from ground import clock
from ground.errors import ConfigError
from pipeline.decoded import DecodedEvent
from store.audit import list_entries
from store.feasibility import feasibility_assessments
from tests.support.app import hub_app
from tests.support.auth import TEST_AUTH, bearer
from workflow.cases import handle_event

from ..workflow.events import application_event, customer_event

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
CUSTOMER_NAME = "张伟"
POPPLER = ("pdftotext", "pdftoppm")


@pytest.fixture
def poppler() -> None:
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if missing:
        reason = f"{', '.join(missing)} missing: install Debian poppler-utils (make tools)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def _assessment(application_no: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "application_no": application_no,
        "province": "henan",
        "assessed_at": "2026-12-01T10:00:00+08:00",
        "requested_capacity_kva": 630.0,
        "verdict": "feasible_with_conditions",
        "recommended_voltage_kv": 10.0,
        "schemes": [
            {
                "rank": 1,
                "score": 0.8,
                "verdict": "feasible_with_conditions",
                "sources": [
                    {
                        "equipment_id": "FD-1001",
                        "kind": "feeder",
                        "name": "车站线",
                        "substation_id": "卧龙变",
                        "distance_m": 420.0,
                    },
                    {
                        "equipment_id": "FD-2002",
                        "kind": "feeder",
                        "name": "建设线",
                        "substation_id": "宛城变",
                        "distance_m": 910.0,
                    },
                ],
            }
        ],
        "conditions": [
            {"code": "confirm_bus_sections", "detail": "check the bus sections"},
            {"code": "insufficient_data", "detail": "feeder FD-2002 load data is stale"},
        ],
    }
    document.update(changes)
    return FeasibilityAssessment.model_validate(document).model_dump(mode="json", exclude_none=True)


def _seed(engine: Engine, application_no: str = "A1", *, assessment: dict[str, Any] | None = None) -> None:
    with engine.begin() as conn:
        handle_event(
            conn, DecodedEvent(application_event(application_no, site_address="南阳市卧龙区车站南路18号"))
        )
        handle_event(
            conn,
            DecodedEvent(
                customer_event(
                    "4130012345", name=CUSTOMER_NAME, category="large_industry", industry_code="C3311"
                )
            ),
        )
        if assessment is not None:
            conn.execute(
                feasibility_assessments.insert().values(
                    application_no=application_no,
                    province=assessment["province"],
                    verdict=assessment["verdict"],
                    recommended_voltage_kv=assessment.get("recommended_voltage_kv"),
                    document=assessment,
                    application={},
                    is_open=True,
                    assessed_at=datetime.fromisoformat(assessment["assessed_at"]),
                    event_id=f"feasibility-{application_no}",
                )
            )


@pytest.fixture
def frozen() -> Iterator[None]:
    with clock.frozen_at(NOW):
        yield


def _pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "reply.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(  # nosec B603 B607 - fixed tool, arguments the test chose
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True
    )
    return done.stdout.decode("utf-8")


@pytest.mark.usefixtures("poppler", "frozen")
def test_the_reply_form_is_a_chinese_pdf_with_the_fields_of_the_scheme(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    _seed(sqlite_engine, assessment=_assessment("A1"))
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))

    response = client.get("/v1/applications/A1/scheme.pdf")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = _pdf_text(response.content, tmp_path)
    for expected in (
        "供电方案答复单",
        "户号",
        "4130012345",
        "申请编号",
        "A1",
        "用电地址",
        "南阳市卧龙区车站南路18号",
        "大工业用电",
        "C3311 制造业",
        "供电电压",
        "10kV",
        "630kVA",
        "FD-1001／主供电源／10kV线路 卧龙变 车站线",
        "FD-2002／备用电源／10kV线路 宛城变 建设线",
        "高供高计",
        "有功0.5S级",
        # 630 kVA at 10 kV is 36.4 A; at 60% load the next standard primary is 75 A.
        "75/5A",
        "工商业电价（两部制）",
        "有条件可行",
        # A high-voltage scheme holds 12 months from the reply date (2026-12-07 in Shanghai).
        "自2026年12月07日起12个月，至2027年12月07日",
        "双电源须接自不同母线段",
        "部分电网数据缺失或过期",
    ):
        assert expected in text, expected
    # The engine's English condition details and codes stay out of the customer's form.
    assert "confirm_bus_sections" not in text and "stale" not in text

    image_prefix = tmp_path / "page"
    (tmp_path / "reply.pdf").write_bytes(response.content)
    subprocess.run(  # nosec B603 B607 - fixed tool, arguments the test chose
        ["pdftoppm", "-png", "-r", "50", str(tmp_path / "reply.pdf"), str(image_prefix)], check=True
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) == 1
    assert pages[0].read_bytes().startswith(b"\x89PNG") and pages[0].stat().st_size > 1000


@pytest.mark.usefixtures("poppler", "frozen")
def test_a_viewer_sees_the_name_masked_and_no_read_is_audited(sqlite_engine: Engine, tmp_path: Path) -> None:
    _seed(sqlite_engine, assessment=_assessment("A1"))
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))

    text = _pdf_text(client.get("/v1/applications/A1/scheme.pdf").content, tmp_path)

    assert "张*" in text and CUSTOMER_NAME not in text
    with sqlite_engine.connect() as conn:
        assert list_entries(conn, action="pii.read") == []


@pytest.mark.usefixtures("poppler", "frozen")
def test_with_pii_read_the_full_name_is_shown_and_the_read_audited(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    _seed(sqlite_engine, assessment=_assessment("A1"))
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH))

    response = client.get(
        "/v1/applications/A1/scheme.pdf", headers=bearer("viewer", scopes=["pii:read"], sub="agent-7")
    )

    assert CUSTOMER_NAME in _pdf_text(response.content, tmp_path)
    with sqlite_engine.connect() as conn:
        reads = list_entries(conn, action="pii.read")
    assert [(entry.actor, entry.subject, entry.detail["fields"]) for entry in reads] == [
        ("agent-7", "customer/4130012345", ["name"])
    ]
    # pii:read alone does not open the form: reading the application is still needed.
    assert (
        client.get("/v1/applications/A1/scheme.pdf", headers=bearer(scopes=["pii:read"])).status_code == 403
    )


@pytest.mark.usefixtures("frozen")
def test_without_an_assessment_or_an_application_the_answer_is_a_problem(sqlite_engine: Engine) -> None:
    _seed(sqlite_engine, "A2")
    _seed(sqlite_engine, "A3", assessment=_assessment("A3"))
    client = TestClient(hub_app(sqlite_engine, auth=TEST_AUTH), headers=bearer("viewer"))

    no_assessment = client.get("/v1/applications/A2/scheme.pdf")
    unknown = client.get("/v1/applications/NOPE/scheme.pdf")

    assert no_assessment.status_code == 404
    assert no_assessment.json()["code"] == "feasibility-not-found" and "A2" in no_assessment.json()["detail"]
    assert unknown.status_code == 404 and unknown.json()["code"] == "application-not-found"
    # The application beside them, with its assessment, still gets its form.
    assert client.get("/v1/applications/A3/scheme.pdf").status_code == 200


@pytest.mark.usefixtures("poppler")
def test_a_province_override_changes_a_label_and_keeps_the_rest(tmp_path: Path) -> None:
    override = tmp_path / "documents" / "scheme_reply.yaml"
    override.parent.mkdir()
    override.write_text("labels:\n  application_no: 业务申请号\nissuer: 国网南阳供电公司\n", encoding="utf-8")
    template = load_reply_template(tmp_path)
    fields = reply_fields(
        template,
        application={"application_no": "A9", "customer_no": "4130012345"},
        customer={"name": CUSTOMER_NAME, "category": "residential"},
        assessment=_assessment("A9", recommended_voltage_kv=0.4, requested_capacity_kva=20.0, schemes=[]),
        replied_on=date(2026, 11, 30),
        unmasked=False,
    )

    text = _pdf_text(render_reply(template, fields, replied_on=date(2026, 11, 30), created=NOW), tmp_path)

    assert "业务申请号" in text and "申请编号" not in text
    assert "国网南阳供电公司" in text
    # The labels the province left alone are the shipped ones.
    assert "供电电压" in text and "户号" in text
    # 20 kVA at 400 V is 29 A, metered directly; low voltage holds 3 months, to the month's last day.
    assert "直接接入" in fields["ct_ratio"] and fields["supply_voltage"] == "380V（三相）"
    assert fields["validity"] == "自2026年11月30日起3个月，至2027年02月28日"


def test_a_template_with_an_unknown_key_is_refused_naming_it(tmp_path: Path) -> None:
    override = tmp_path / "documents" / "scheme_reply.yaml"
    override.parent.mkdir()
    override.write_text("titel: 供电方案答复单\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"scheme_reply.yaml.*titel"):
        load_reply_template(tmp_path)


def _fields_of(assessment: dict[str, Any]) -> dict[str, str]:
    """The form's fields for application A1 with no customer record, replied on 7 December 2026."""
    return reply_fields(
        load_reply_template(),
        application={"application_no": "A1"},
        customer=None,
        assessment=assessment,
        replied_on=date(2026, 12, 7),
        unmasked=False,
    )


@pytest.mark.parametrize(
    ("kv", "kva", "point", "accuracy", "ct_ratio"),
    [
        # 8 kVA single-phase is 36 A: a direct-connected single-phase meter.
        (0.22, 8.0, "低供低计", "有功2级", "直接接入"),
        # 80 kVA at 400 V is 115 A: 115 / 0.6 = 192 A, next standard primary 200 A.
        (0.4, 80.0, "低供低计", "有功1级", "200/5A"),
        # 250 kVA at 10 kV is metered on the 0.4 kV side: 361 A / 0.6 = 601 A, next 750 A.
        (10.0, 250.0, "高供低计", "有功1级", "750/5A"),
        # 12500 kVA at 35 kV: 206 A / 0.6 = 344 A, next 400 A; class I accuracy.
        (35.0, 12500.0, "高供高计", "有功0.2S级", "400/5A"),
    ],
)
def test_metering_follows_voltage_and_capacity(
    kv: float, kva: float, point: str, accuracy: str, ct_ratio: str
) -> None:
    fields = _fields_of(_assessment("A1", recommended_voltage_kv=kv, requested_capacity_kva=kva))
    assert fields["metering_point"].startswith(point)
    assert fields["meter_accuracy"].startswith(accuracy)
    assert fields["ct_ratio"].startswith(ct_ratio)
    # Without a customer record the customer's fields say so instead of guessing.
    assert fields["customer_name"] == "未登记" and fields["category"] == "未登记"


def test_a_name_is_masked_after_its_first_character() -> None:
    assert mask_name("张伟") == "张*"
    assert mask_name("南阳市宛城区李记餐馆") == "南*********"
    assert mask_name("李") == "李"


def test_a_condition_code_the_template_does_not_name_is_shown_not_dropped() -> None:
    assessment = _assessment(
        "A1",
        conditions=[{"code": "harmonic_study", "detail": "x"}, {"code": "insufficient_data", "detail": "y"}],
    )
    fields = _fields_of(assessment)
    assert fields["conditions"].splitlines() == [
        "1. 其他条件（harmonic_study）",
        "2. 部分电网数据缺失或过期，需现场勘查核实后确认供电方案。",
    ]
    no_conditions = _assessment("A1", conditions=[])
    assert _fields_of(no_conditions)["conditions"] == "无"


def test_a_dedicated_line_is_written_with_its_circuits_and_its_bays_to_confirm() -> None:
    scheme = {
        "rank": 1,
        "score": 0.7,
        "verdict": "feasible_with_conditions",
        "sources": [
            {
                "equipment_id": "DZ000012",
                "kind": "substation",
                "name": "110kV卧龙变",
                "substation_id": "DZ000012",
                "distance_m": 2500.0,
                "connection": "dedicated_line",
                "circuits": 2,
            }
        ],
    }
    assessment = _assessment(
        "A1", schemes=[scheme], conditions=[{"code": "confirm_spare_bays", "detail": "2 bays at DZ000012"}]
    )
    fields = _fields_of(assessment)
    assert fields["sources"] == "DZ000012／主供电源／变电站新出专线2回 DZ000012 110kV卧龙变"
    assert fields["conditions"] == "1. 专线出线需占用变电站10kV备用间隔，需核实备用间隔数量。"
