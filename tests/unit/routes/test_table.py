"""The route table: shipped routes load, and every mistake is reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

import routes.table
from canonical_model.events import EventType, lookup
from canonical_model.grid import Feeder
from ground.errors import ConfigError, MappingError
from ground.settings import PROJECT_ROOT
from mappings.engine import Mapping
from mappings.yamlfile import Diagnostics
from routes.table import InvalidPolicy, JoinedTable, TableSource, load_routes, read_routes

GOOD_ROUTE = """\
  - name: extra
    source: {system: marketing, record: application}
    mapping: marketing/application
    event_type: cn.yekuo.application.changed.v1
    exchange: yekuo.events
    routing_key: "application.extra.{business_type}"
    subject: "{application_no}"
"""


def errors_with(
    tmp_path: Path, mappings: dict[str, Mapping], route: str, broken: frozenset[str] = frozenset()
) -> list[ConfigError]:
    """Errors of a routes folder holding only extra.yaml with the given route text."""
    folder = tmp_path / "routes"
    folder.mkdir(exist_ok=True)
    (folder / "extra.yaml").write_text("routes:\n" + route, encoding="utf-8")
    diag = Diagnostics(tmp_path)
    read_routes(folder, mappings, diag, broken)
    return diag.errors


def changed(old: str, new: str) -> str:
    assert old in GOOD_ROUTE
    return GOOD_ROUTE.replace(old, new)


def test_the_shipped_routes(shipped_mappings: dict[str, Mapping]) -> None:
    routes = load_routes(PROJECT_ROOT / "routes", shipped_mappings, root=PROJECT_ROOT)
    marketing = [r for r in routes if r.source_system == "marketing"]
    assert [r.name for r in marketing] == ["marketing-application", "marketing-customer"]
    application = marketing[0]
    assert (application.source_system, application.record_type, application.mapping) == (
        "marketing",
        "application",
        "marketing/application",
    )
    assert application.event_type == "cn.yekuo.application.changed.v1"
    assert application.exchange == "yekuo.events"
    assert application.routing_key.text == "application.changed.{customer_class}"
    assert application.routing_key.fields == ["customer_class"]
    assert application.subject.fields == ["application_no"]
    assert application.on_invalid is InvalidPolicy.PARK
    assert (application.file, application.line) == ("routes/marketing.yaml", 3)


def test_a_good_extra_route_loads(tmp_path: Path, shipped_mappings: dict[str, Mapping]) -> None:
    assert errors_with(tmp_path, shipped_mappings, GOOD_ROUTE) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        (
            "mapping: marketing/application",
            "mapping: marketing/applications",
            4,
            "unknown mapping 'marketing/applications' (expected mappings/marketing/applications.yaml)",
        ),
        (
            "record: application}",
            "record: customer}",
            3,
            "the route's source marketing/customer differs from mapping 'marketing/application''s source "
            "marketing/application",
        ),
        ("cn.yekuo.application.changed.v1", "yekuo.application.extra", 5, "does not look like cn.yekuo."),
        (
            "cn.yekuo.application.changed.v1",
            "cn.yekuo.application.extra.v1",
            5,
            "event type 'cn.yekuo.application.extra.v1' is not in the event catalogue",
        ),
        (
            "cn.yekuo.application.changed.v1",
            "cn.yekuo.customer.changed.v1",
            5,
            "event type cn.yekuo.customer.changed.v1 carries a Customer, but mapping 'marketing/application' "
            "produces a ConnectionApplication",
        ),
        (
            "{business_type}",
            "{business}",
            7,
            "uses {business}, which is not a field of ConnectionApplication",
        ),
        ("{business_type}", "{org_no}", 7, "uses {org_no}, which ConnectionApplication allows to be absent"),
        ("{business_type}", "{documents}", 7, "uses {documents}, which is not a text, number or code field"),
        (
            '"application.extra.{business_type}"',
            '"application.*.{business_type}"',
            7,
            "must be dot-separated non-empty words without '*' or '#'",
        ),
        (
            '"application.extra.{business_type}"',
            '"application..{business_type}"',
            7,
            "must be dot-separated non-empty words",
        ),
        ('"{application_no}"', '"{application_no:>5}"', 8, "no formats"),
        ('"{application_no}"', '""', 8, "'subject' must be non-empty text"),
        ("exchange: yekuo.events", "exchange: [a]", 6, "'exchange' must be non-empty text"),
        ("name: extra", "name: Extra Route", 2, "route name 'Extra Route' must be lower-case"),
        ("name: extra", "name: extra\n    on_invalid: retry", 3, "on_invalid 'retry' is not one of: park"),
        ("name: extra", "name: extra\n    routing: x", 3, "unknown key 'routing' in a route"),
        ("name: extra", "name: extra\n    description: [x]", 3, "description must be text"),
        ("    exchange: yekuo.events\n", "", 2, "the route lacks 'exchange'"),
        (
            "source: {system: marketing, record: application}",
            "source: marketing",
            3,
            "'source' must be a map",
        ),
        (
            "source: {system: marketing, record: application}",
            "source: {system: marketing}",
            3,
            "'source' needs text values",
        ),
        (
            "source: {system: marketing, record: application}",
            "source: {system: marketing, record: application, op: x}",
            3,
            "unknown key 'op' in 'source'",
        ),
    ],
)
def test_route_mistakes(
    tmp_path: Path, shipped_mappings: dict[str, Mapping], old: str, new: str, line: int, message: str
) -> None:
    errors = errors_with(tmp_path, shipped_mappings, changed(old, new))
    assert any((e.file, e.line) == ("routes/extra.yaml", line) and message in str(e) for e in errors), [
        str(e) for e in errors
    ]


def test_routes_using_a_broken_mapping_are_not_reported_twice(
    tmp_path: Path, shipped_mappings: dict[str, Mapping]
) -> None:
    route = changed("mapping: marketing/application", "mapping: marketing/other")
    assert errors_with(tmp_path, shipped_mappings, route, frozenset({"marketing/other"})) == []


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("routes: []\n", 1, "'routes' must be a non-empty list"),
        ("routes:\n  - just-a-name\n", 2, "a route is a map"),
        ("route: []\n", 1, "a route file is a map with one key, 'routes'"),
        ("routes: [{name: a}]\nextra: 1\n", 2, "unknown key 'extra'; a route file has only 'routes'"),
        ("routes: [\n", 2, "invalid YAML"),
    ],
)
def test_route_file_mistakes(
    tmp_path: Path, shipped_mappings: dict[str, Mapping], text: str, line: int, message: str
) -> None:
    folder = tmp_path / "routes"
    folder.mkdir()
    (folder / "bad.yaml").write_text(text, encoding="utf-8")
    diag = Diagnostics(tmp_path)
    read_routes(folder, shipped_mappings, diag)
    assert any((e.file, e.line) == ("routes/bad.yaml", line) and message in str(e) for e in diag.errors), [
        str(e) for e in diag.errors
    ]


def test_route_names_are_unique_across_files(tmp_path: Path, shipped_mappings: dict[str, Mapping]) -> None:
    folder = tmp_path / "routes"
    folder.mkdir()
    (folder / "a.yaml").write_text("routes:\n" + GOOD_ROUTE, encoding="utf-8")
    second = GOOD_ROUTE.replace("application.extra.", "application.other.")
    (folder / "b.yaml").write_text("# comment\nroutes:\n" + second, encoding="utf-8")
    diag = Diagnostics(tmp_path)
    routes = read_routes(folder, shipped_mappings, diag)
    assert [r.file for r in routes] == ["routes/a.yaml"]
    [error] = diag.errors
    assert str(error) == "routes/b.yaml:3: route name 'extra' is already used at routes/a.yaml:2"


def test_two_routes_may_not_publish_the_same_event_for_the_same_source(
    tmp_path: Path, shipped_mappings: dict[str, Mapping]
) -> None:
    twin = GOOD_ROUTE.replace("name: extra", "name: twin")
    errors = errors_with(tmp_path, shipped_mappings, GOOD_ROUTE + twin)
    assert [(e.file, e.line) for e in errors] == [("routes/extra.yaml", 9)]
    assert "publishes cn.yekuo.application.changed.v1 for marketing/application like route 'extra'" in str(
        errors[0]
    )


def test_load_routes_raises_and_yml_files_are_flagged(
    tmp_path: Path, shipped_mappings: dict[str, Mapping]
) -> None:
    folder = tmp_path / "routes"
    folder.mkdir()
    (folder / "old.yml").write_text("routes: []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"configuration files end in \.yaml"):
        load_routes(folder, shipped_mappings, root=tmp_path)
    with pytest.raises(ConfigError, match="the route folder is missing"):
        load_routes(tmp_path / "nowhere", shipped_mappings, root=tmp_path)


def test_templates_render_document_fields(shipped_mappings: dict[str, Mapping]) -> None:
    routes = load_routes(PROJECT_ROOT / "routes", shipped_mappings, root=PROJECT_ROOT)
    [route] = [route for route in routes if route.name == "marketing-application"]
    assert (
        route.routing_key.render({"customer_class": "lv_residential"}) == "application.changed.lv_residential"
    )
    with pytest.raises(MappingError) as caught:
        route.routing_key.render({"customer_class": "a.b"})
    assert (caught.value.file, caught.value.line, caught.value.field) == (
        "routes/marketing.yaml",
        9,
        "customer_class",
    )
    assert "would get '.', '*' or '#'" in str(caught.value)
    with pytest.raises(MappingError, match="needs a text or number value"):
        route.subject.render({})
    assert route.subject.render({"application_no": "a.b"}) == "a.b"


POLLED_ROUTE = """\
  - name: pms-feeder-extra
    source:
      system: pms
      record: feeder
      table: T_SB_ZWYC_DKX
      key: OBJ_ID
      changed_at: GXSJ
      join: {as: GIS, table: T_TX_SBZB, key: SBID, changed_at: GXSJ}
      deleted: feeder_deleted
    mapping: pms/feeder
    event_type: cn.yekuo.grid.feeder.changed.v1
    exchange: yekuo.events
    routing_key: "grid.feeder.extra"
    subject: "{feeder_id}"
  - name: pms-feeder-extra-deleted
    source: {system: pms, record: feeder_deleted}
    mapping: pms/feeder_deleted
    event_type: cn.yekuo.grid.feeder.deleted.v1
    exchange: yekuo.events
    routing_key: "grid.feeder.gone"
    subject: "{equipment_id}"
"""


def polled_errors(
    tmp_path: Path, mappings: dict[str, Mapping], old: str, new: str
) -> list[tuple[int | None, str]]:
    assert old in POLLED_ROUTE
    return [(e.line, str(e)) for e in errors_with(tmp_path, mappings, POLLED_ROUTE.replace(old, new, 1))]


def test_a_route_source_can_name_the_table_to_poll(
    tmp_path: Path, shipped_mappings: dict[str, Mapping]
) -> None:
    folder = tmp_path / "routes"
    folder.mkdir()
    (folder / "extra.yaml").write_text("routes:\n" + POLLED_ROUTE, encoding="utf-8")
    polled, deletions = load_routes(folder, shipped_mappings, root=tmp_path)
    assert polled.table == TableSource(
        table="T_SB_ZWYC_DKX",
        key="OBJ_ID",
        changed_at="GXSJ",
        join=JoinedTable(alias="GIS", table="T_TX_SBZB", key="SBID", changed_at="GXSJ"),
        deleted="feeder_deleted",
        line=6,
    )
    assert deletions.table is None


def test_the_shipped_pms_routes_poll_their_tables(shipped_mappings: dict[str, Mapping]) -> None:
    routes = load_routes(PROJECT_ROOT / "routes", shipped_mappings, root=PROJECT_ROOT)
    polled = {
        r.record_type: r.table.table for r in routes if r.source_system == "pms" and r.table is not None
    }
    assert polled == {
        "substation": "T_SB_ZNYC_DZ",
        "main_transformer": "T_SB_ZNYC_ZBYQ",
        "feeder": "T_SB_ZWYC_DKX",
        "transformer": "T_SB_ZNYC_PDBYQ",
    }
    assert all(r.table is None for r in routes if r.source_system == "marketing")


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        (
            "      changed_at: GXSJ\n      join",
            "      join",
            6,
            "needs 'table', 'key' and 'changed_at' in 'source'; lacks 'changed_at'",
        ),
        ("table: T_SB_ZWYC_DKX", "table: T_SB ZWYC", 6, "'table' in 'source' must be a table or column name"),
        ("key: OBJ_ID", "key: 1OBJ", 7, "'key' in 'source' must be a table or column name"),
        (
            "changed_at: GXSJ\n",
            "changed_at: [GXSJ]\n",
            8,
            "'changed_at' in 'source' must be a table or column name",
        ),
        ("key: SBID,", "key: SB-ID,", 9, "'key' in 'join' must be a table or column name"),
        ("as: GIS, ", "", 9, "'join' lacks 'as'"),
        ("as: GIS, ", "as: GIS, where: x, ", 9, "unknown key 'where' in 'join'"),
        (
            "join: {as: GIS, table: T_TX_SBZB, key: SBID, changed_at: GXSJ}",
            "join: T_TX_SBZB",
            9,
            "'join' must be a map",
        ),
        (
            "deleted: feeder_deleted",
            "deleted: Feeder-Deleted",
            10,
            "'deleted' names the record type of deletion",
        ),
        ("deleted: feeder_deleted", "deleted: feeder", 10, "'deleted' names the record type of deletion"),
        (
            "deleted: feeder_deleted",
            "deleted: feeder_removed",
            6,
            "deletion records pms/feeder_removed have no route",
        ),
        (
            "      system: pms\n",
            "      system: pms\n      since: 2020\n",
            5,
            "unknown key 'since' in 'source'; expected: system",
        ),
    ],
)
def test_table_options_are_checked_with_file_and_line(
    tmp_path: Path, shipped_mappings: dict[str, Mapping], old: str, new: str, line: int, message: str
) -> None:
    errors = polled_errors(tmp_path, shipped_mappings, old, new)
    assert len(errors) == 1, errors
    assert errors[0][0] == line
    assert f"routes/extra.yaml:{line}: " in errors[0][1]
    assert message in errors[0][1]


def test_routes_of_one_record_must_agree_on_its_table(
    tmp_path: Path, shipped_mappings: dict[str, Mapping], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second type that carries feeders, so that the twin route differs from the first in its table only.
    twin_type = EventType("cn.yekuo.grid.feeder.twin.v1", Feeder, "a feeder, published twice")
    monkeypatch.setattr(
        routes.table,
        "lookup",
        lambda event_type: twin_type if event_type == twin_type.event_type else lookup(event_type),
    )
    twin = (
        POLLED_ROUTE.split("  - name: pms-feeder-extra-deleted")[0]
        .replace("pms-feeder-extra", "pms-feeder-twin")
        .replace("cn.yekuo.grid.feeder.changed.v1", twin_type.event_type)
        .replace("table: T_SB_ZWYC_DKX", "table: T_SB_ZWYC_DKX2")
    )
    errors = errors_with(tmp_path, shipped_mappings, POLLED_ROUTE + twin)
    assert [(e.line, str(e).split(": ", 1)[1]) for e in errors] == [
        (
            27,
            "pms/feeder is already read from table T_SB_ZWYC_DKX as configured by route "
            "'pms-feeder-extra' at routes/extra.yaml:2; routes of one record must agree on its table",
        )
    ]
