"""Applying mappings: every field feature, and errors that name file, line, field and value."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import Field

from canonical_model.common import CanonicalModel
from ground.errors import (
    InvalidRecordError,
    MalformedInputError,
    MappingError,
    SchemaViolationError,
)
from mappings.loader import load_mapping
from tests.unit.mappings.workspace import FIRST_FIELD_LINE, Item, Workspace

FILE = "mappings/test/sample.yaml"
DEFAULTS: dict[str, Any] = {"grade": "none", "items": [], "refs": []}


def doc(**fields: Any) -> dict[str, Any]:
    """The dumped Sample document: the model's defaults plus the given fields."""
    return {**DEFAULTS, **fields}


def test_from_copies_a_value_and_follows_dotted_source_paths(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: HEAD.ID, required: true}
        note: {from: TEXT}
        """
    )
    assert mapping.apply({"HEAD": {"ID": "k1"}, "TEXT": "hello"}) == doc(key="k1", note="hello")


def test_text_is_trimmed_and_blank_text_counts_as_absent(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K, required: true}
        note: {from: TEXT}
        """
    )
    assert mapping.apply({"K": "  k1  ", "TEXT": "   "}) == doc(key="k1")
    assert mapping.apply({"K": "k1", "TEXT": ""}) == doc(key="k1")
    assert mapping.apply({"K": "k1"}) == doc(key="k1")


def test_missing_required_value_is_a_mapping_error_naming_file_line_field_and_source(
    ws: Workspace,
) -> None:
    mapping = ws.mapping(
        """
        note: {from: TEXT}
        key: {from: K, required: true}
        """
    )
    for payload in ({}, {"K": None}, {"K": " "}):
        with pytest.raises(MappingError) as caught:
            mapping.apply({**payload, "TEXT": "x"})
        error = caught.value
        assert (error.file, error.line, error.field, error.source_path) == (
            FILE,
            FIRST_FIELD_LINE + 1,
            "key",
            "K",
        )
        assert "required value is missing" in str(error)
        assert str(error).startswith(f"{FILE}:{FIRST_FIELD_LINE + 1}: field 'key' (source K)")
        assert isinstance(error, InvalidRecordError)


def test_a_source_path_through_a_non_object_is_a_mapping_error(ws: Workspace) -> None:
    mapping = ws.mapping("key: {from: HEAD.ID}\n")
    with pytest.raises(MappingError, match="expected an object at source 'HEAD'") as caught:
        mapping.apply({"HEAD": "flat"})
    assert caught.value.value == "flat"


def test_code_lookup_translates_legacy_codes(ws: Workspace) -> None:
    ws.table("test/grade", '"00": none\n"02": first\n')
    mapping = ws.mapping(
        """
        key: {from: K}
        grade: {from: G, codes: test/grade}
        """
    )
    assert mapping.apply({"K": "k", "G": "02"}) == doc(key="k", grade="first")
    assert mapping.apply({"K": "k", "G": " 02 "}) == doc(key="k", grade="first")


def test_integer_codes_are_looked_up_as_their_text(ws: Workspace) -> None:
    ws.table("test/flag", '"1": true\n"0": false\n')
    mapping = ws.mapping("key: {from: K}\nflag: {from: F, codes: test/flag}\n")
    assert mapping.apply({"K": "k", "F": 0}) == doc(key="k", flag=False)


def test_unknown_code_is_an_error_naming_file_line_field_value_and_table(ws: Workspace) -> None:
    ws.table("test/grade", '"00": none\n"02": first\n')
    mapping = ws.mapping(
        """
        key: {from: K}
        grade: {from: GRADE_CODE, codes: test/grade}
        """
    )
    with pytest.raises(MappingError) as caught:
        mapping.apply({"K": "k", "GRADE_CODE": "07"})
    error = caught.value
    assert (error.file, error.line, error.field, error.value) == (FILE, FIRST_FIELD_LINE + 1, "grade", "07")
    assert str(error) == (
        f"{FILE}:{FIRST_FIELD_LINE + 1}: field 'grade' (source GRADE_CODE): "
        "unknown code in table test/grade: '07'"
    )


def test_a_code_that_is_neither_text_nor_integer_is_rejected(ws: Workspace) -> None:
    ws.table("test/grade", '"00": none\n')
    mapping = ws.mapping("key: {from: K}\ngrade: {from: G, codes: test/grade}\n")
    with pytest.raises(MappingError, match="must be text"):
        mapping.apply({"K": "k", "G": 0.5})


def test_default_applies_only_when_the_source_is_absent(ws: Workspace) -> None:
    ws.table("test/grade", '"00": none\n"02": first\n')
    mapping = ws.mapping(
        """
        key: {from: K}
        grade: {from: G, codes: test/grade, default: second}
        """
    )
    assert mapping.apply({"K": "k"}) == doc(key="k", grade="second")
    assert mapping.apply({"K": "k", "G": ""}) == doc(key="k", grade="second")
    assert mapping.apply({"K": "k", "G": "02"}) == doc(key="k", grade="first")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12.5", 12.5), (" 7 ", 7.0), (3, 3.0), (2.25, 2.25)],
)
def test_number_parses_text_and_numbers(ws: Workspace, raw: object, expected: float) -> None:
    mapping = ws.mapping("key: {from: K}\nload_kw: {from: P, number: true}\n")
    assert mapping.apply({"K": "k", "P": raw}) == doc(key="k", load_kw=expected)


@pytest.mark.parametrize("raw", ["12,5", "abc", "nan", "inf", True, ["1"]])
def test_unparseable_numbers_are_mapping_errors(ws: Workspace, raw: object) -> None:
    mapping = ws.mapping("key: {from: K}\nload_kw: {from: P, number: true}\n")
    with pytest.raises(MappingError, match="number") as caught:
        mapping.apply({"K": "k", "P": raw})
    assert (caught.value.line, caught.value.field, caught.value.value) == (
        FIRST_FIELD_LINE + 1,
        "load_kw",
        raw,
    )


@pytest.mark.parametrize(
    ("field", "unit", "raw", "expected"),
    [
        ("capacity_kva", "MVA", 1.1, 1100.0),
        ("capacity_kva", "MVA", "0.63", 630.0),
        ("capacity_kva", "kVA", 630, 630.0),
        ("capacity_kva", "VA", 2500, 2.5),
        ("load_kw", "MW", 0.4, 400.0),
        ("load_kw", "W", 1500, 1.5),
        ("voltage_kv", "V", 380, 0.38),
        ("voltage_kv", "kV", 10, 10.0),
    ],
)
def test_unit_conversion_to_the_unit_in_the_field_name(
    ws: Workspace, field: str, unit: str, raw: object, expected: float
) -> None:
    mapping = ws.mapping(f"key: {{from: K}}\n{field}: {{from: V, unit: {unit}}}\n")
    assert mapping.apply({"K": "k", "V": raw}) == doc(key="k", **{field: expected})


def test_code_values_are_converted_too(ws: Workspace) -> None:
    ws.table("test/volt_v", "LV: 380\nMV: 10000\n")
    mapping = ws.mapping("key: {from: K}\nvoltage_kv: {from: V, codes: test/volt_v, unit: V}\n")
    assert mapping.apply({"K": "k", "V": "MV"}) == doc(key="k", voltage_kv=10.0)


def test_legacy_local_time_becomes_an_aware_shanghai_time(ws: Workspace) -> None:
    mapping = ws.mapping('key: {from: K}\nat: {from: T, datetime: "%Y-%m-%d %H:%M:%S"}\n')
    result = mapping.apply({"K": "k", "T": "2026-11-20 09:13:05"})
    assert result == doc(key="k", at="2026-11-20T09:13:05+08:00")
    parsed = dt.datetime.fromisoformat(result["at"])
    assert parsed.utcoffset() == dt.timedelta(hours=8)
    assert parsed.astimezone(dt.UTC) == dt.datetime(2026, 11, 20, 1, 13, 5, tzinfo=dt.UTC)


def test_datetime_with_another_time_zone_and_aware_inputs(ws: Workspace) -> None:
    mapping = ws.mapping('key: {from: K}\nat: {from: T, datetime: "%Y%m%d%H%M", timezone: Europe/Berlin}\n')
    assert mapping.apply({"K": "k", "T": "202607011200"})["at"] == "2026-07-01T12:00:00+02:00"
    naive = dt.datetime(2026, 1, 5, 8, 0)
    assert mapping.apply({"K": "k", "T": naive})["at"] == "2026-01-05T08:00:00+01:00"
    aware = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    assert mapping.apply({"K": "k", "T": aware})["at"] == "2026-01-05T08:00:00Z"


def test_an_offset_in_the_text_wins_over_the_configured_zone(ws: Workspace) -> None:
    mapping = ws.mapping('key: {from: K}\nat: {from: T, datetime: "%Y-%m-%dT%H:%M:%S%z"}\n')
    assert mapping.apply({"K": "k", "T": "2026-11-20T09:13:05+0000"})["at"] == "2026-11-20T09:13:05Z"


@pytest.mark.parametrize("raw", ["2026-13-01 00:00:00", "20.11.2026", 20261120])
def test_unparseable_dates_are_mapping_errors(ws: Workspace, raw: object) -> None:
    mapping = ws.mapping('key: {from: K}\nat: {from: T, datetime: "%Y-%m-%d %H:%M:%S"}\n')
    with pytest.raises(MappingError, match="date-time") as caught:
        mapping.apply({"K": "k", "T": raw})
    assert (caught.value.line, caught.value.field, caught.value.value) == (FIRST_FIELD_LINE + 1, "at", raw)


def test_dotted_targets_build_nested_objects(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        location.lon: {from: LON, number: true}
        location.lat: {from: LAT, number: true}
        """
    )
    assert mapping.apply({"K": "k", "LON": 112.53, "LAT": "32.99"}) == doc(
        key="k", location={"lon": 112.53, "lat": 32.99}
    )


def test_a_nested_object_without_any_value_is_left_out(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        location.lon: {from: LON, number: true}
        location.lat: {from: LAT, number: true}
        """
    )
    assert mapping.apply({"K": "k", "LON": None, "LAT": " "}) == doc(key="k")


def test_a_half_filled_nested_object_is_a_schema_violation_at_the_missing_fields_line(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        location.lon: {from: LON, number: true}
        location.lat: {from: LAT, number: true}
        """
    )
    with pytest.raises(SchemaViolationError) as caught:
        mapping.apply({"K": "k", "LON": 112.5})
    assert str(caught.value) == (
        f"{FILE}:{FIRST_FIELD_LINE + 2}: field 'location.lat' (source LAT) (Sample): Field required"
    )


def test_each_maps_a_repeating_group_to_a_list(ws: Workspace) -> None:
    ws.table("test/flag", '"1": true\n"0": false\n')
    mapping = ws.mapping(
        """
        key: {from: K}
        items:
          each: LINES
          fields:
            code: {from: CODE, required: true}
            size_kva: {from: QTY, unit: kVA}
            ok: {from: OK, codes: test/flag}
        """
    )
    payload = {
        "K": "k",
        "LINES": [{"CODE": "a", "QTY": 1.5, "OK": "0"}, {"CODE": "b", "QTY": None, "OK": None}],
    }
    assert mapping.apply(payload) == doc(
        key="k", items=[{"code": "a", "size_kva": 1.5, "ok": False}, {"code": "b", "ok": True}]
    )
    assert mapping.apply({"K": "k", "LINES": []}) == doc(key="k")
    assert mapping.apply({"K": "k"}) == doc(key="k")


def test_errors_inside_a_repeating_group_name_the_item_and_the_sub_entry_line(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        items:
          each: LINES
          fields:
            code: {from: CODE, required: true}
            size_kva: {from: QTY, number: true}
        """
    )
    with pytest.raises(MappingError) as caught:
        mapping.apply({"K": "k", "LINES": [{"CODE": "a"}, {"CODE": "b", "QTY": "many"}]})
    error = caught.value
    assert (error.line, error.field, error.value, error.source_path) == (
        FIRST_FIELD_LINE + 5,
        "items[1].size_kva",
        "many",
        "QTY",
    )


def test_each_rejects_what_is_not_a_list_of_objects(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        items:
          each: LINES
          fields:
            code: {from: CODE}
        """
    )
    with pytest.raises(MappingError, match="expected a list"):
        mapping.apply({"K": "k", "LINES": {"CODE": "a"}})
    with pytest.raises(MappingError, match="item 0 is not an object"):
        mapping.apply({"K": "k", "LINES": ["a"]})


def test_required_each_needs_the_list(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        items: {each: LINES, required: true, fields: {code: {from: CODE}}}
        """
    )
    with pytest.raises(MappingError, match="required list is missing"):
        mapping.apply({"K": "k"})


def test_schema_violation_inside_a_list_points_at_the_sub_entry(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        items:
          each: LINES
          fields:
            code: {from: CODE}
        """
    )
    with pytest.raises(SchemaViolationError) as caught:
        mapping.apply({"K": "k", "LINES": [{"CODE": "a"}, {"CODE": None}]})
    assert str(caught.value).startswith(f"{FILE}:{FIRST_FIELD_LINE + 4}: field 'items.1.code' (source CODE)")


class Pair(CanonicalModel):
    """A target with a list of fixed length, as a day's 96 points are."""

    key: str
    items: tuple[Item, ...] = Field(min_length=2, max_length=2)


def test_a_bad_item_of_a_fixed_length_list_is_reported_alone(ws: Workspace) -> None:
    path = ws.mapping_file(
        """
        key: {from: K}
        items:
          each: LINES
          fields:
            code: {from: CODE}
        """
    )
    mapping = load_mapping(
        path, ws.codes(), ws.mappings_dir, root=ws.root, models={"Sample": (Pair, "pair.v1")}
    )
    with pytest.raises(SchemaViolationError) as caught:
        mapping.apply({"K": "k", "LINES": [{"CODE": "a"}, {"CODE": None}]})
    # pydantic would add "should have at least 2 items after validation, not 1": it does not count the
    # failed item, so the list is not too short at all.
    assert str(caught.value) == (
        f"{FILE}:{FIRST_FIELD_LINE + 4}: field 'items.1.code' (source CODE) (Pair): Field required"
    )
    with pytest.raises(SchemaViolationError, match=r"field 'items' \(source LINES\) \(Pair\): .*at least 2"):
        mapping.apply({"K": "k", "LINES": [{"CODE": "a"}]})


def test_schema_violation_names_file_line_field_and_value(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        note: {from: N}
        capacity_kva: {from: CAP, number: true}
        """
    )
    with pytest.raises(SchemaViolationError) as caught:
        mapping.apply({"K": "k", "CAP": -5})
    assert str(caught.value) == (
        f"{FILE}:{FIRST_FIELD_LINE + 2}: field 'capacity_kva' (source CAP) (Sample): "
        "Input should be greater than or equal to 0: -5.0"
    )
    assert isinstance(caught.value, InvalidRecordError)


def test_every_violation_of_a_document_is_reported(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        capacity_kva: {from: CAP, number: true}
        voltage_kv: {from: V, number: true}
        """
    )
    with pytest.raises(SchemaViolationError) as caught:
        mapping.apply({"K": "k", "CAP": -5, "V": 0})
    message = str(caught.value)
    assert f"{FILE}:{FIRST_FIELD_LINE + 1}: field 'capacity_kva'" in message
    assert f"{FILE}:{FIRST_FIELD_LINE + 2}: field 'voltage_kv'" in message


def test_an_error_location_without_an_entry_falls_back_to_the_fields_line(ws: Workspace) -> None:
    mapping = ws.mapping("key: {from: K}\n")
    assert mapping.entry_for(("key",)).line == FIRST_FIELD_LINE
    assert mapping.entry_for(("no_such_field", 0)).line == FIRST_FIELD_LINE - 1
    assert mapping.fields_line == FIRST_FIELD_LINE - 1


def test_constant_and_template_fields(ws: Workspace) -> None:
    mapping = ws.mapping(
        """
        key: {from: K}
        note: {template: "order {K} / {HEAD.NO}"}
        grade: {constant: special}
        refs: {template: [{system: test, record_type: sample, key: "{K}"}]}
        """
    )
    assert mapping.apply({"K": "k1", "HEAD": {"NO": 7}}) == doc(
        key="k1",
        note="order k1 / 7",
        grade="special",
        refs=[{"system": "test", "record_type": "sample", "key": "k1"}],
    )


def test_a_template_with_a_missing_source_is_a_mapping_error(ws: Workspace) -> None:
    mapping = ws.mapping('key: {from: K}\nnote: {template: "order {NO}"}\n')
    with pytest.raises(MappingError, match="needs source 'NO'") as caught:
        mapping.apply({"K": "k"})
    assert (caught.value.line, caught.value.field) == (FIRST_FIELD_LINE + 1, "note")


def test_results_do_not_share_state_between_records(ws: Workspace) -> None:
    mapping = ws.mapping("key: {from: K}\nrefs: {constant: [{system: s, record_type: r, key: x}]}\n")
    first = mapping.apply({"K": "a"})
    first["refs"].append("changed")
    assert mapping.apply({"K": "b"})["refs"] == [{"system": "s", "record_type": "r", "key": "x"}]


def test_a_payload_that_is_not_an_object_is_malformed_input(ws: Workspace) -> None:
    mapping = ws.mapping("key: {from: K}\n")
    with pytest.raises(MalformedInputError, match="must be an object"):
        mapping.apply(["K", "k"])  # type: ignore[arg-type]
