"""The consistency rules: each kind catches a seeded disagreement and leaves a clean record alone; the rule
file is checked with file and line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from canonical_model.application import ConnectionApplication
from canonical_model.common import GeoPoint
from canonical_model.consistency import ConsistencyFinding
from ground.settings import PROJECT_ROOT
from workflow.consistency import (
    AppliedFacts,
    ConsistencyConfig,
    CustomerFacts,
    OpenCase,
    TransformerFacts,
    distance_m,
    normalised_address,
)
from workflow.consistency_config import load_consistency_config

SITE = GeoPoint(lon=112.5, lat=33.0)
# About 1.1 km north of SITE.
FAR = GeoPoint(lon=112.5, lat=33.01)


class Known:
    """A hub that knows the given transformers (by district) and open applications."""

    def __init__(
        self,
        transformers: dict[str, TransformerFacts] | None = None,
        applications: Sequence[OpenCase] = (),
    ) -> None:
        self.transformers = transformers or {}
        self.applications = list(applications)

    def holds_transformers(self) -> bool:
        return bool(self.transformers)

    def transformer_of_district(self, district_id: str) -> TransformerFacts | None:
        return self.transformers.get(district_id)

    def open_applications(
        self,
        *,
        customer_no: str | None,
        business_type: str,
        site: GeoPoint | None,
        within_m: float,
        address: str | None,
    ) -> Sequence[OpenCase]:
        # The store narrows them to the customer's, the site's cells and the address; the check judges each.
        return self.applications


@pytest.fixture(scope="module")
def rules() -> ConsistencyConfig:
    return load_consistency_config(PROJECT_ROOT)


def transformer(**changes: object) -> TransformerFacts:
    facts = TransformerFacts(
        equipment_id="PB1",
        status="in_service",
        voltage_kv=10.0,
        rated_capacity_kva=400.0,
        ownership="public",
        location=SITE,
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def applied(**changes: object) -> AppliedFacts:
    facts = AppliedFacts(
        system="marketing",
        application_no="A1",
        customer_no="4130000001",
        business_type="new_connection",
        customer_class="lv_non_residential",
        site_location=GeoPoint(lon=112.5005, lat=33.0005),
        site_address="南阳市卧龙区中州路12号",
        industry_code="H6210",
        urban_rural="urban",
        org_no="41401",
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def customer(**changes: object) -> CustomerFacts:
    facts = CustomerFacts(
        system="marketing",
        customer_no="4130000001",
        industry_code="H6210",
        transformer_district_id="TG0000001",
        contract_capacity_kva=50.0,
        supply_voltage_kv=0.38,
        urban_rural="urban",
    )
    return replace(facts, **changes)  # type: ignore[arg-type]


def other_application(number: str, **changes: object) -> OpenCase:
    document: dict[str, object] = {
        "application_no": number,
        "business_type": "new_connection",
        "customer_no": "4130000999",
        "requested_capacity_kva": 50.0,
        "customer_class": "lv_non_residential",
        "channel": "online",
        "submitted_at": "2026-11-20T09:13:05+08:00",
        "updated_at": "2026-11-20T09:13:05+08:00",
        "org_no": "41401",
        "site_address": "南阳市宛城区新华路1号",
    }
    document.update(changes)
    stored = ConnectionApplication.model_validate(document).model_dump(mode="json", exclude_none=True)
    return OpenCase.of_document(stored)


def rules_found(
    config: ConsistencyConfig, facts: AppliedFacts, record: CustomerFacts | None, known: Known
) -> dict[str, ConsistencyFinding]:
    return {finding.rule: finding for finding in config.check(facts, record, known)}


CLEAN = Known({"TG0000001": transformer()})


def test_a_clean_record_raises_nothing(rules: ConsistencyConfig) -> None:
    assert rules.check(applied(), customer(), CLEAN) == []


def test_a_district_pms_does_not_know_is_caught(rules: ConsistencyConfig) -> None:
    known = Known({"TG0000002": transformer()})
    found = rules_found(rules, applied(), customer(), known)
    finding = found["transformer_district_known"]
    assert finding.systems == ("marketing", "pms")
    assert [(v.field, v.value) for v in finding.values] == [
        ("transformer_district_id", "TG0000001"),
        ("status", None),
    ]
    assert "TG0000001" in finding.message and "unknown to PMS" in finding.message


def test_a_district_whose_transformer_is_out_of_service_is_caught(rules: ConsistencyConfig) -> None:
    known = Known({"TG0000001": transformer(status="out_of_service")})
    finding = rules_found(rules, applied(), customer(), known)["transformer_district_known"]
    assert "out_of_service in PMS" in finding.message


def test_no_district_is_judged_before_the_grid_is_loaded(rules: ConsistencyConfig) -> None:
    assert "transformer_district_known" not in rules_found(rules, applied(), customer(), Known())


def test_a_dedicated_transformer_that_disagrees_with_the_contract_is_caught(rules: ConsistencyConfig) -> None:
    known = Known({"TG0000001": transformer(ownership="dedicated", rated_capacity_kva=315.0)})
    record = customer(contract_capacity_kva=400.0, supply_voltage_kv=10.0)
    finding = rules_found(rules, applied(site_location=None), record, known)[
        "dedicated_transformer_matches_contract"
    ]
    values = {(v.system, v.field): v.value for v in finding.values}
    assert values[("marketing", "contract_capacity_kva")] == 400.0
    assert values[("pms", "rated_capacity_kva")] == 315.0
    assert ("marketing", "supply_voltage_kv") not in values  # the voltages agree
    assert "contract_capacity_kva 400 kVA vs PMS 315 kVA" in finding.message


def test_a_dedicated_transformer_of_another_voltage_is_caught(rules: ConsistencyConfig) -> None:
    known = Known({"TG0000001": transformer(ownership="dedicated", rated_capacity_kva=400.0)})
    record = customer(contract_capacity_kva=400.0, supply_voltage_kv=0.38)
    finding = rules_found(rules, applied(site_location=None), record, known)[
        "dedicated_transformer_matches_contract"
    ]
    assert "supply_voltage_kv 0.38 kV vs PMS 10 kV" in finding.message


def test_a_dedicated_transformer_that_agrees_is_not_flagged(rules: ConsistencyConfig) -> None:
    known = Known({"TG0000001": transformer(ownership="dedicated", rated_capacity_kva=400.0)})
    record = customer(contract_capacity_kva=400.0, supply_voltage_kv=10.0)
    found = rules_found(rules, applied(site_location=None), record, known)
    assert "dedicated_transformer_matches_contract" not in found
    # A public transformer's rating says nothing about one customer's contract.
    assert rules.check(applied(), customer(contract_capacity_kva=8.0), CLEAN) == []


def test_a_site_beyond_the_low_voltage_radius_is_caught(rules: ConsistencyConfig) -> None:
    finding = rules_found(rules, applied(site_location=FAR), customer(), CLEAN)["site_within_supply_radius"]
    values = {v.field: v for v in finding.values}
    assert values["site_location"].personal is True
    assert values["radius_m"].value == 250.0
    assert 1100 <= float(values["distance_m"].value) <= 1120  # type: ignore[arg-type]
    assert "250 m (low_voltage, urban)" in finding.message


def test_the_radius_follows_area_and_voltage(rules: ConsistencyConfig) -> None:
    # 1.1 km is beyond the rural low-voltage 500 m too, but within the urban 10 kV 3 km.
    rural = applied(site_location=FAR, urban_rural="rural")
    assert "site_within_supply_radius" in rules_found(rules, rural, customer(urban_rural="rural"), CLEAN)
    high = customer(supply_voltage_kv=10.0)
    assert "site_within_supply_radius" not in rules_found(rules, applied(site_location=FAR), high, CLEAN)


def test_a_site_near_its_transformer_is_not_flagged(rules: ConsistencyConfig) -> None:
    assert "site_within_supply_radius" not in rules_found(rules, applied(), customer(), CLEAN)
    assert "site_within_supply_radius" not in rules_found(
        rules, applied(site_location=None), customer(), CLEAN
    )


def test_a_declared_trade_code_unlike_the_customer_record_is_caught(rules: ConsistencyConfig) -> None:
    finding = rules_found(rules, applied(industry_code="C1711"), customer(), CLEAN)["industry_code_agrees"]
    assert [(v.record, v.value) for v in finding.values] == [
        ("application", "C1711"),
        ("customer", "H6210"),
    ]
    assert finding.message == "申请行业分类 C1711 与客户档案 H6210 不一致"


def test_trade_codes_that_agree_or_are_missing_are_not_flagged(rules: ConsistencyConfig) -> None:
    assert "industry_code_agrees" not in rules_found(rules, applied(industry_code=None), customer(), CLEAN)
    assert "industry_code_agrees" not in rules_found(rules, applied(), customer(industry_code=None), CLEAN)


def test_another_open_application_of_the_same_customer_is_a_duplicate(rules: ConsistencyConfig) -> None:
    known = Known({"TG0000001": transformer()}, [other_application("A0", customer_no="4130000001")])
    finding = rules_found(rules, applied(), customer(), known)["no_duplicate_application"]
    assert "A0" in finding.message and "same customer" in finding.message


def test_another_open_application_at_the_same_site_or_address_is_a_duplicate(
    rules: ConsistencyConfig,
) -> None:
    near = other_application("A7", site_location={"lon": 112.5005, "lat": 33.0006})
    found = rules_found(rules, applied(), customer(), Known({"TG0000001": transformer()}, [near]))
    assert "same site" in found["no_duplicate_application"].message
    spelled = other_application("A8", site_address=" 南阳市卧龙区 中州路１２号 ")
    found = rules_found(rules, applied(), customer(), Known({"TG0000001": transformer()}, [spelled]))
    assert "same address" in found["no_duplicate_application"].message


def test_other_business_types_other_sites_and_the_case_itself_are_no_duplicates(
    rules: ConsistencyConfig,
) -> None:
    others = [
        other_application("A1", customer_no="4130000001"),  # the case itself
        other_application("A2", customer_no="4130000001", business_type="capacity_increase"),
        other_application("A3", site_location={"lon": 112.6, "lat": 33.1}),
    ]
    known = Known({"TG0000001": transformer()}, others)
    assert "no_duplicate_application" not in rules_found(rules, applied(), customer(), known)


def test_a_disabled_rule_does_not_run(rules: ConsistencyConfig) -> None:
    disabled = ConsistencyConfig(
        tuple(
            replace(rule, enabled=False) if rule.name == "industry_code_agrees" else rule
            for rule in rules.rules
        )
    )
    assert disabled.check(applied(industry_code="C1711"), customer(), CLEAN) == []


def test_distance_and_address_helpers() -> None:
    assert distance_m(SITE, FAR) == pytest.approx(1112, abs=2)
    assert normalised_address("南阳市 卧龙区，中州路１２号") == normalised_address("南阳市卧龙区中州路12号")


def _write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "workflow"
    folder.mkdir()
    (folder / "consistency.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_province_file_can_add_its_own_rule(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        "rules:\n"
        "  - name: trade_division\n"
        "    kind: industry_code_mismatch\n"
        "    message: '{application_code} != {customer_code}'\n"
        "    params: {compare_chars: 3}\n",
    )
    [rule] = load_consistency_config(root).rules
    assert rule.params == {"compare_chars": 3}
    config = load_consistency_config(root)
    # Same division (H62), another class: the province's coarser rule lets it pass.
    assert config.check(applied(industry_code="H6220"), customer(), CLEAN) == []
    assert [f.message for f in config.check(applied(industry_code="C1711"), customer(), CLEAN)] == [
        "C1711 != H6210"
    ]
