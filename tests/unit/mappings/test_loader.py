"""Loading mapping files: every configuration mistake is a ConfigError naming file and line."""

from __future__ import annotations

import pytest

from canonical_model.application import ConnectionApplication
from ground.errors import ConfigError
from mappings.codes import read_code_tables
from mappings.loader import load_mapping, load_mappings, read_mappings
from mappings.yamlfile import Diagnostics
from tests.unit.mappings.workspace import FIRST_FIELD_LINE, MODELS, Sample, Workspace

FILE = "mappings/test/sample.yaml"


def where(errors: list[ConfigError]) -> list[tuple[str | None, int | None]]:
    return [(e.file, e.line) for e in errors]


def only(errors: list[ConfigError]) -> ConfigError:
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def test_a_good_mapping_loads_with_its_metadata(ws: Workspace) -> None:
    mapping = ws.mapping("key: {from: K, required: true}\n")
    assert (mapping.name, mapping.file, mapping.source_system, mapping.record_type) == (
        "test/sample",
        FILE,
        "test",
        "sample",
    )
    assert mapping.target is Sample
    assert mapping.schema_name == "sample.v1"


def test_the_canonical_registry_is_the_default_target_list(ws: Workspace) -> None:
    path = ws.write(
        "mappings/test/app.yaml",
        """\
        mapping: test/app
        source: {system: test, record: app}
        target: ConnectionApplication
        fields:
          application_no: {from: A}
        """,
    )
    with pytest.raises(ConfigError) as caught:
        load_mapping(path, ws.codes(), ws.mappings_dir, root=ws.root)
    assert "ConnectionApplication requires 'business_type'" in str(caught.value)
    assert ConnectionApplication.__name__ in str(caught.value)


def test_unknown_key_in_a_field_entry(ws: Workspace) -> None:
    error = only(ws.mapping_errors("key: {from: K}\nnote: {from: N, requird: true}\n"))
    assert (error.file, error.line) == (FILE, FIRST_FIELD_LINE + 1)
    assert "unknown key 'requird' in the entry for 'note'" in str(error)


def test_a_misspelt_kind_is_reported_once(ws: Workspace) -> None:
    error = only(ws.mapping_errors("key: {from: K}\nnote: {form: N}\n"))
    assert "unknown key 'form'" in str(error)


def test_unknown_target_fields_are_reported_with_the_model_fields(ws: Workspace) -> None:
    errors = ws.mapping_errors("key: {from: K}\nnotes: {from: N}\nlocation.lng: {from: X}\n")
    assert where(errors) == [(FILE, FIRST_FIELD_LINE + 1), (FILE, FIRST_FIELD_LINE + 2)]
    assert "unknown target field 'notes'" in str(errors[0])
    assert "GeoPoint (location) has no field 'lng'; fields: lon, lat" in str(errors[1])


def test_a_list_field_needs_each(ws: Workspace) -> None:
    error = only(ws.mapping_errors("key: {from: K}\nitems.code: {from: C}\n"))
    assert error.line == FIRST_FIELD_LINE + 1
    assert "'items' is a list; map its items with 'each'" in str(error)


def test_each_needs_a_list_of_objects_and_item_fields(ws: Workspace) -> None:
    errors = ws.mapping_errors(
        "key: {from: K}\nnote: {each: L, fields: {code: {from: C}}}\nitems: {each: L}\n"
    )
    assert where(errors) == [(FILE, FIRST_FIELD_LINE + 1), (FILE, FIRST_FIELD_LINE + 2)]
    assert "'note' is not a list of objects" in str(errors[0])
    assert "needs 'fields'" in str(errors[1])


def test_sub_fields_of_each_are_checked_against_the_item_model(ws: Workspace) -> None:
    errors = ws.mapping_errors(
        """
        key: {from: K}
        items:
          each: L
          fields:
            qty: {from: Q}
        """
    )
    messages = [str(e) for e in errors]
    assert where(errors) == [(FILE, FIRST_FIELD_LINE + 4), (FILE, FIRST_FIELD_LINE + 3)]
    assert "unknown target field 'items.qty'" in messages[0]
    assert "Item requires 'items.code', which no entry maps" in messages[1]


def test_unknown_code_table(ws: Workspace) -> None:
    error = only(ws.mapping_errors("key: {from: K}\ngrade: {from: G, codes: test/grades}\n"))
    assert (error.file, error.line) == (FILE, FIRST_FIELD_LINE + 1)
    assert "unknown code table 'test/grades' (expected mappings/codes/test/grades.yaml)" in str(error)


def test_code_table_values_are_checked_against_the_target_field(ws: Workspace) -> None:
    ws.table("test/grade", '"00": none\n"01": firstt\n')
    error = only(ws.mapping_errors("key: {from: K}\ngrade: {from: G, codes: test/grade}\n"))
    assert (error.file, error.line) == ("mappings/codes/test/grade.yaml", 4)
    assert "code '01': 'firstt' is not a valid 'grade'" in str(error)
    assert f"used by {FILE}:{FIRST_FIELD_LINE + 1}" in str(error)


def test_code_tables_used_with_units_must_hold_numbers(ws: Workspace) -> None:
    ws.table("test/volt", "LV: 0.4\nMV: ten\n")
    error = only(ws.mapping_errors("key: {from: K}\nvoltage_kv: {from: V, codes: test/volt, unit: kV}\n"))
    assert (error.file, error.line) == ("mappings/codes/test/volt.yaml", 4)
    assert "'ten' is not a number" in str(error)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("capacity_kva: {from: C, unit: MW}", "cannot convert MW (active power) to kVA (apparent power)"),
        ("capacity_kva: {from: C, unit: kva}", "unknown unit 'kva'"),
        ("note: {from: C, unit: kW}", "field 'note' does not end in a unit suffix"),
        ("voltage_kv: {from: C, unit: A}", "cannot convert A (current) to kV (voltage)"),
    ],
)
def test_impossible_unit_conversions_fail_at_load_time(ws: Workspace, entry: str, message: str) -> None:
    error = only(ws.mapping_errors(f"key: {{from: K}}\n{entry}\n"))
    assert (error.file, error.line) == (FILE, FIRST_FIELD_LINE + 1)
    assert message in str(error)


@pytest.mark.parametrize(
    ("entry", "line_offset", "message"),
    [
        ('note: {from: T, datetime: "%Y"}', 1, "'note' does not hold a date-time"),
        ('at: {from: T, datetime: "%Y", timezone: Asia/Shanghia}', 1, "unknown time zone 'Asia/Shanghia'"),
        ("at: {from: T, timezone: UTC}", 1, "'timezone' only applies together with 'datetime'"),
        ("at: {from: T, datetime: yyyy-mm-dd}", 1, "'datetime' must be a strptime format"),
        ('at: {from: T, datetime: "%Y", number: true}', 1, "'number' cannot be combined with 'datetime'"),
    ],
)
def test_datetime_entries_are_checked(ws: Workspace, entry: str, line_offset: int, message: str) -> None:
    error = only(ws.mapping_errors(f"key: {{from: K}}\n{entry}\n"))
    assert (error.file, error.line) == (FILE, FIRST_FIELD_LINE + line_offset)
    assert message in str(error)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("grade: {from: G, default: top}", "default 'top' is not a valid 'grade'"),
        ("grade: {from: G, default: none, required: true}", "a field with a default is never missing"),
        ("grade: {from: G, default: null}", "'default: null' means no default"),
        ("grade: {constant: top}", "constant 'top' is not a valid 'grade'"),
        ("grade: {from: G, constant: first}", "needs exactly one of from, constant, template, each"),
        ("grade: {required: true}", "needs exactly one of from, constant, template, each (found: none)"),
        ("grade: {constant: first, required: true}", "'required' cannot be used with 'constant'"),
        ("note: {from: N, required: yes}", "'required' must be true or false, not 'yes'"),
        ("note: {from: N, number: 1}", "'number' must be true or false"),
        ("note: {from: 'A..B'}", "'from' must be a source field path"),
        ('note: {template: "a {N:>4}"}', "no formats"),
        ('note: {template: "a {N"}', "bad template"),
        ("note: N", "the entry for 'note' must be a map"),
        ("note: {from: !!str N}", "'from' must be a source field path"),
        ("grade: {from: G, default: !!str none}", "'default': unsupported YAML value"),
    ],
)
def test_field_entry_mistakes(ws: Workspace, entry: str, message: str) -> None:
    errors = ws.mapping_errors(f"key: {{from: K}}\n{entry}\n")
    assert any(message in str(e) for e in errors), [str(e) for e in errors]
    assert all((e.file, e.line) == (FILE, FIRST_FIELD_LINE + 1) for e in errors), [str(e) for e in errors]


def test_overlapping_targets_are_rejected(ws: Workspace) -> None:
    errors = ws.mapping_errors(
        "key: {from: K}\nlocation: {constant: {lon: 1, lat: 2}}\nlocation.lon: {from: X}\n"
    )
    assert (errors[0].line, "'location.lon' overlaps 'location' on line 6") == (
        FIRST_FIELD_LINE + 2,
        str(errors[0]).split(": ", 1)[1],
    )


def test_every_required_model_field_must_be_mapped(ws: Workspace) -> None:
    error = only(ws.mapping_errors("note: {from: N}\n"))
    assert (error.file, error.line) == (FILE, FIRST_FIELD_LINE - 1)
    assert "Sample requires 'key', which no entry maps" in str(error)


def test_a_partly_mapped_nested_object_must_map_its_required_fields(ws: Workspace) -> None:
    error = only(ws.mapping_errors("key: {from: K}\nlocation.lon: {from: X}\n"))
    assert "GeoPoint requires 'location.lat', which no entry maps" in str(error)


def test_all_mistakes_of_a_file_are_collected(ws: Workspace) -> None:
    errors = ws.mapping_errors(
        """
        key: {from: K}
        note: {from: N, requird: true}
        grade: {from: G, codes: nope}
        capacity_kva: {from: C, unit: MW}
        """
    )
    assert where(errors) == [(FILE, FIRST_FIELD_LINE + n) for n in (1, 2, 3)]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "mapping: test/other\nsource: {system: t, record: s}\ntarget: Sample\nfields: {key: {from: K}}\n",
            1,
            "mapping name 'test/other' does not match the file; expected 'test/sample'",
        ),
        (
            "mapping: test/sample\nsource: {system: t, record: s}\ntarget: Sampel\nfields: {key: {from: K}}",
            3,
            "unknown target model 'Sampel'; known models: Sample",
        ),
        (
            "mapping: test/sample\nsource: {system: t}\ntarget: Sample\nfields: {key: {from: K}}\n",
            2,
            "'source' needs text values for both 'system' and 'record'",
        ),
        (
            "mapping: test/sample\nsource: {system: t, record: s}\ntarget: Sample\nfields: {}\n",
            4,
            "'fields' must be a non-empty map",
        ),
        ("mapping: test/sample\nsource: {system: t, record: s}\ntarget: Sample\n", 1, "missing key 'fields'"),
        (
            "mapping: test/sample\nsource: {system: t, record: s}\ntarget: Sample\nfield: {}\nfields: {}\n",
            4,
            "unknown key 'field'",
        ),
        ("- a\n- b\n", 1, "a mapping file is a map"),
        ("", 1, "the file is empty"),
    ],
)
def test_top_level_mistakes(ws: Workspace, text: str, line: int, message: str) -> None:
    path = ws.write("mappings/test/sample.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_mapping(path, ws.codes(), ws.mappings_dir, root=ws.root, models=MODELS)
    assert str(caught.value).startswith(f"{FILE}:{line}: ")
    assert message in str(caught.value)


def test_broken_yaml_is_reported_with_file_and_line(ws: Workspace) -> None:
    ws.mapping_file("key: {from: K}\nnote: {from: N, required: true\ngrade: {constant: first}\n")
    error = only(_errors_of_file(ws))
    assert error.file == FILE
    assert error.line == FIRST_FIELD_LINE + 2
    assert "invalid YAML" in str(error)


def test_duplicate_keys_are_reported_at_the_second_occurrence(ws: Workspace) -> None:
    ws.mapping_file("key: {from: K}\nnote: {from: N}\nnote: {from: M}\n")
    error = only(_errors_of_file(ws))
    assert (error.file, error.line) == (FILE, FIRST_FIELD_LINE + 2)
    assert 'duplicate key "note"' in str(error)


def _errors_of_file(ws: Workspace) -> list[ConfigError]:
    diag = Diagnostics(ws.root)
    read_mappings(ws.mappings_dir, ws.codes(), diag, MODELS)
    return diag.errors


def test_load_mappings_reports_every_broken_file_and_skips_code_tables(ws: Workspace) -> None:
    ws.table("test/grade", '"00": none\n')
    header = "source: {system: t, record: s}\ntarget: Sample\nfields:\n"
    ws.write("mappings/a/good.yaml", f"mapping: a/good\n{header}  key: {{from: K}}\n")
    ws.write("mappings/a/bad1.yaml", f"mapping: a/bad1\n{header}  key: {{from: K, unit: kV}}\n")
    ws.write("mappings/b/bad2.yaml", f"mapping: b/bad2\n{header}  key: {{from: K}}\n  nope: {{from: X}}\n")
    ws.write("mappings/b/stray.yml", "mapping: b/stray\n")
    diag = Diagnostics(ws.root)
    mappings, broken = read_mappings(ws.mappings_dir, ws.codes(), diag, MODELS)
    assert list(mappings) == ["a/good"]
    assert broken == {"a/bad1", "b/bad2"}
    assert where(diag.errors) == [
        ("mappings/b/stray.yml", None),
        ("mappings/a/bad1.yaml", 5),
        ("mappings/b/bad2.yaml", 6),
    ]
    with pytest.raises(ConfigError, match="3 configuration errors"):
        load_mappings(ws.mappings_dir, ws.codes(), root=ws.root, models=MODELS)


def test_a_missing_mapping_folder_is_reported(ws: Workspace) -> None:
    diag = Diagnostics(ws.root)
    assert read_mappings(ws.root / "nowhere", ws.codes(), diag, MODELS) == ({}, frozenset())
    assert where(diag.errors) == [("nowhere", None)]


def test_mappings_using_a_broken_code_table_are_not_reported_twice(ws: Workspace) -> None:
    ws.write("mappings/codes/test/grade.yaml", "table: test/grade\ncodes:\n  01: first\n")
    ws.mapping_file("key: {from: K}\ngrade: {from: G, codes: test/grade}\n")
    diag = Diagnostics(ws.root)
    codes = read_code_tables(ws.codes_dir, diag)
    read_mappings(ws.mappings_dir, codes, diag, MODELS)
    assert where(diag.errors) == [("mappings/codes/test/grade.yaml", 3)]
