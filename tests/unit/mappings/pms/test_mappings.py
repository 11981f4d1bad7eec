"""The shipped PMS mappings: code tables per system, MVA to kVA, GIS coordinates, deletions."""

from __future__ import annotations

from typing import Any

import pytest

from ground.errors import MappingError
from ground.settings import PROJECT_ROOT
from mappings.codes import load_code_tables
from mappings.engine import Mapping
from mappings.loader import load_mappings


@pytest.fixture(scope="module")
def mappings() -> dict[str, Mapping]:
    codes = load_code_tables(PROJECT_ROOT / "mappings" / "codes", root=PROJECT_ROOT)
    return load_mappings(PROJECT_ROOT / "mappings", codes, root=PROJECT_ROOT)


def transformer(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "OBJ_ID": "PB0000042",
        "SBMC": "人民路12号公变",
        "XH": "S13-M-400/10",
        "SSDKX": "XL000007",
        "SSDZ": "DZ000002",
        "EDRL": 400.0,
        "DYDJ": "22",
        "SYXZ": "01",
        "YXTQBH": "TG0012345",
        "YXZT": "20",
        "TYRQ": "2015-06-30",
        "GXSJ": "2026-11-26 10:00:00",
        "GIS": {
            "SBID": "PB0000042",
            "SBLX": "0302",
            "JD": 112.528,
            "WD": 32.991,
            "GXSJ": "2024-01-01 08:00:00",
        },
    }
    row.update(changes)
    return row


def test_the_shipped_pms_mappings(mappings: dict[str, Mapping]) -> None:
    assert sorted(m for m in mappings if m.startswith("pms/")) == [
        "pms/feeder",
        "pms/feeder_deleted",
        "pms/main_transformer",
        "pms/main_transformer_deleted",
        "pms/substation",
        "pms/substation_deleted",
        "pms/transformer",
        "pms/transformer_deleted",
    ]
    assert mappings["pms/transformer"].schema_name == "distribution_transformer.v1"


def test_a_distribution_transformer_with_its_coordinates_and_marketing_link(
    mappings: dict[str, Mapping],
) -> None:
    assert mappings["pms/transformer"].apply(transformer()) == {
        "transformer_id": "PB0000042",
        "name": "人民路12号公变",
        "model": "S13-M-400/10",
        "feeder_id": "XL000007",
        "substation_id": "DZ000002",
        "rated_capacity_kva": 400.0,
        "voltage_kv": 10.0,
        "ownership": "public",
        "status": "in_service",
        "commissioned_on": "2015-06-30",
        "transformer_district_id": "TG0012345",
        "location": {"lon": 112.528, "lat": 32.991},
        "updated_at": "2026-11-26T10:00:00+08:00",
        "source_refs": [{"system": "pms", "record_type": "transformer", "key": "PB0000042"}],
    }


def test_without_a_gis_row_there_is_no_location(mappings: dict[str, Mapping]) -> None:
    document = mappings["pms/transformer"].apply(transformer(GIS=None, GXSJ=None, YXZT="30"))
    assert "location" not in document and "updated_at" not in document
    assert document["status"] == "decommissioned"


def test_main_transformer_ratings_in_mva_become_kva(mappings: dict[str, Mapping]) -> None:
    row = {
        "OBJ_ID": "ZB000001",
        "SSDZ": "DZ000001",
        "SBMC": "卧龙变1号主变",
        "EDRL": 6.3,
        "EDDY": "32",
        "YXZT": "20",
    }
    document = mappings["pms/main_transformer"].apply(row)
    assert (document["rated_capacity_kva"], document["voltage_kv"]) == (6300.0, 110.0)
    assert mappings["pms/main_transformer"].apply({**row, "EDRL": 31.5})["rated_capacity_kva"] == 31500.0


def test_pms_voltage_codes_are_not_marketing_codes(mappings: dict[str, Mapping]) -> None:
    with pytest.raises(MappingError) as caught:
        mappings["pms/transformer"].apply(transformer(DYDJ="AC00101"))
    assert (caught.value.file, caught.value.field, caught.value.value) == (
        "mappings/pms/transformer.yaml",
        "voltage_kv",
        "AC00101",
    )
    assert "unknown code in table pms/dydj" in str(caught.value)


def test_substations_and_feeders(mappings: dict[str, Mapping]) -> None:
    substation = mappings["pms/substation"].apply(
        {
            "OBJ_ID": "DZ000001",
            "BDZMC": "110kV卧龙变",
            "DYDJ": "32",
            "YWDW": "变电运维中心",
            "GDQY": "03",
            "BYJGS": 2,
            "YXZT": "20",
            "GIS": None,
        }
    )
    assert substation == {
        "substation_id": "DZ000001",
        "name": "110kV卧龙变",
        "voltage_kv": 110.0,
        "owner_unit": "变电运维中心",
        "supply_area_class": "B",
        "spare_bays": 2,
        "status": "in_service",
        "source_refs": [{"system": "pms", "record_type": "substation", "key": "DZ000001"}],
    }
    feeder = mappings["pms/feeder"].apply(
        {
            "OBJ_ID": "XL000001",
            "XLMC": "10kV卧龙1线",
            "QSDZ": "DZ000001",
            "DYDJ": "22",
            "YXDL": 485.0,
            "LLKGS": 2,
            "GDQY": "01",
            "SSMX": "II",
            "YXZT": "10",
        }
    )
    assert (feeder["allowed_current_a"], feeder["tie_switch_count"], feeder["status"]) == (
        485.0,
        2,
        "planned",
    )
    assert feeder["supply_area_class"] == "A+"
    assert feeder["bus_section"] == "II"


def test_a_supply_area_class_pms_does_not_know_is_refused(mappings: dict[str, Mapping]) -> None:
    row = {"OBJ_ID": "XL1", "XLMC": "10kV卧龙1线", "DYDJ": "22", "GDQY": "A", "YXZT": "20"}
    with pytest.raises(MappingError) as caught:
        mappings["pms/feeder"].apply(row)
    assert (caught.value.field, caught.value.value) == ("supply_area_class", "A")
    # An unclassed feeder (GDQY NULL) is mapped without a class.
    assert "supply_area_class" not in mappings["pms/feeder"].apply({**row, "GDQY": None})


def test_a_deletion_record(mappings: dict[str, Mapping]) -> None:
    document = mappings["pms/transformer_deleted"].apply(
        {"OBJ_ID": "PB0000042", "GXSJ": "2026-11-26 10:00:00", "DETECTED_AT": "2026-11-26 10:05:00"}
    )
    assert document == {
        "equipment_id": "PB0000042",
        "kind": "transformer",
        "last_changed_at": "2026-11-26T10:00:00+08:00",
        "detected_at": "2026-11-26T10:05:00+08:00",
        "source_refs": [{"system": "pms", "record_type": "transformer", "key": "PB0000042"}],
    }
