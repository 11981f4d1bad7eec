"""The event catalogue: every type once, each with a registered payload model, families by equipment kind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import canonical_model.events
from canonical_model.application import ConnectionApplication
from canonical_model.events import (
    CASE_EVENTS,
    CASE_STAGE_CHANGED,
    CATALOGUE,
    PROJECTION_UPDATED,
    channel_of,
    listed,
    lookup,
)
from canonical_model.grid import EquipmentDeletion, Feeder, GridEquipment
from canonical_model.registry import MODELS, schema_name_of


def test_every_type_is_listed_once_with_a_registered_payload_model() -> None:
    types = [entry.event_type for entry in CATALOGUE]
    assert len(types) == len(set(types))
    registered = {model for model, _ in MODELS.values()}
    assert all(entry.payload in registered for entry in CATALOGUE)
    assert all(entry.description and "\n" not in entry.description for entry in CATALOGUE)


def test_a_listed_type_comes_before_its_family() -> None:
    assert lookup("cn.yekuo.grid.feeder.changed.v1").payload is Feeder  # type: ignore[union-attr]
    assert lookup("cn.yekuo.grid.switch.changed.v1").payload is GridEquipment  # type: ignore[union-attr]
    assert lookup("cn.yekuo.grid.switch.deleted.v1").payload is EquipmentDeletion  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "event_type",
    [
        "cn.yekuo.grid.transformer.renamed.v1",
        "cn.yekuo.grid.switch.changed.v2",
        "cn.yekuo.grid.a.b.changed.v1",
        "cn.yekuo.application.withdrawn.v1",
    ],
)
def test_a_type_outside_the_catalogue_is_not_found(event_type: str) -> None:
    assert lookup(event_type) is None


def test_the_hub_s_own_events_name_their_channels() -> None:
    assert {entry.event_type for entry in CATALOGUE if entry.channels} >= set(CASE_EVENTS)
    stage = channel_of(CASE_STAGE_CHANGED)
    assert (stage.prefix, stage.key_model) == ("case.stage_changed", ConnectionApplication)
    assert stage.key(customer_class="hv_single_source") == "case.stage_changed.hv_single_source"
    with pytest.raises(KeyError, match="customer_class"):
        stage.key()
    with pytest.raises(KeyError, match="2 channels"):
        channel_of(PROJECTION_UPDATED)
    assert listed(CASE_STAGE_CHANGED).dataschema == "urn:yekuo:schema:stage_transition.v1"
    assert schema_name_of(listed(PROJECTION_UPDATED).payload) == "projection_update.v1"


def test_the_catalogue_imports_only_the_canonical_model_and_ground() -> None:
    tree = ast.parse(Path(canonical_model.events.__file__).read_text(encoding="utf-8"))
    project = {"canonical_model", "ground", "mappings", "routes", "pipeline", "workflow", "api", "yekuo"}
    imported = {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert imported & project <= {"canonical_model", "ground"}
