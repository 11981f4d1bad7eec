"""Every code the dashboard shows has its Chinese name: each label table covers exactly its code set."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import get_args

import pytest

from api.applications import EndToEndStatus
from api.ui import labels
from canonical_model.application import BusinessType, CustomerClass
from canonical_model.case import CaseOutcome, CaseStatus, TimelineKind
from canonical_model.events import CASE_EVENTS
from canonical_model.feasibility import RuleResult, Verdict
from workflow.process import ANY_CAUSE, REWORK_CAUSES, UNSPECIFIED

ENUMS: list[tuple[Mapping[str, str], type[StrEnum]]] = [
    (labels.CUSTOMER_CLASSES, CustomerClass),
    (labels.BUSINESS_TYPES, BusinessType),
    (labels.CASE_STATUSES, CaseStatus),
    (labels.OUTCOMES, CaseOutcome),
    (labels.TIMELINE_KINDS, TimelineKind),
    (labels.VERDICTS, Verdict),
    (labels.RULE_RESULTS, RuleResult),
]


@pytest.mark.parametrize(("table", "codes"), ENUMS, ids=[codes.__name__ for _, codes in ENUMS])
def test_each_enum_has_a_chinese_name_for_every_value(table: Mapping[str, str], codes: type[StrEnum]) -> None:
    assert set(table) == {code.value for code in codes}


def test_the_other_tables_cover_their_codes() -> None:
    assert set(labels.END_TO_END) == set(get_args(EndToEndStatus))
    assert set(labels.REWORK_CAUSES) == {*REWORK_CAUSES, UNSPECIFIED, ANY_CAUSE}
    assert set(labels.EVENT_TYPES) == set(CASE_EVENTS)


def test_an_unknown_code_is_shown_as_it_is_and_none_as_a_dash() -> None:
    assert labels.label("customer_class", "lv_residential") == "低压居民"
    assert labels.label("customer_class", "lv_new_kind") == "lv_new_kind"
    assert labels.label("verdict", None) == "—"
