"""What every request body of the API holds to: text without control characters and strict, finite numbers.

A body is decoded with Python's json module, which reads NaN, Infinity and numbers too large for a float
(1e400 becomes inf) without complaint, and pydantic's lax mode would take "50" or true for a number. A
request model derives from RequestModel and types its numbers FiniteNumber, so each of these is answered
422 naming the field, before it can reach the marketing system's XML, the database or the feasibility rules.
Nested models of a request must be RequestModels too: the text check runs on each model's own fields.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi.exceptions import RequestValidationError
from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from canonical_model.common import CanonicalModel, GeoPoint
from ground.settings import SubmissionSettings

# C0 (tab and line breaks included: every text field of a request is a single line), DEL, C1, and the
# halves of surrogate pairs, which no UTF-8 text can hold on their own.
CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A JSON number that is a finite float: no string, no boolean, no NaN or infinity."""

StrictFlag = Annotated[bool, Field(strict=True)]
"""A JSON true or false; "yes", 1 or "true" are refused."""


def refuse_control_characters(value: Any) -> Any:
    """The value unchanged; a string holding a control character is refused with its code point."""
    if isinstance(value, str):
        found = CONTROL_CHARACTER.search(value)
        if found is not None:
            raise PydanticCustomError(
                "control_character",
                "must not contain control characters; found U+{code_point} at position {position}",
                {"code_point": f"{ord(found.group()):04X}", "position": found.start()},
            )
    return value


class RequestModel(CanonicalModel):
    """Base of request bodies: no unknown fields, and no control character in any text or field name."""

    @model_validator(mode="before")
    @classmethod
    def _plain_field_names(cls, data: Any) -> Any:
        # An unknown name is refused anyway, but its error would quote the name back to the caller.
        if isinstance(data, dict) and any(
            isinstance(name, str) and CONTROL_CHARACTER.search(name) for name in data
        ):
            raise PydanticCustomError("control_character", "a field name contains a control character")
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        # Before the field's own validation, so surrounding whitespace is not stripped away unseen.
        return refuse_control_characters(value)


class SiteLocation(RequestModel, GeoPoint):
    """A WGS84 position given in a request (经纬度): finite numbers only."""

    lon: FiniteNumber = Field(ge=-180, le=180, description="longitude, WGS84 (经度)")
    lat: FiniteNumber = Field(ge=-90, le=90, description="latitude, WGS84 (纬度)")


def check_rule_names(names: set[str], known: set[str], field: str) -> None:
    """Refuse rule names that no configured rule has, with a 422 naming the field and the names."""
    unknown = sorted(names - known)
    if not unknown:
        return
    raise RequestValidationError(
        [
            {
                "type": "unknown_rule",
                "loc": ("body", field),
                "msg": f"no consistency rule is named {', '.join(unknown)}; "
                f"the rules are: {', '.join(sorted(known))}",
                "input": unknown,
            }
        ]
    )


def check_capacity(value: float, limits: SubmissionSettings, field: str = "requested_capacity_kva") -> None:
    """Refuse a capacity outside the configured range with a 422 naming the field."""
    if limits.min_capacity_kva <= value <= limits.max_capacity_kva:
        return
    raise RequestValidationError(
        [
            {
                "type": "capacity_range",
                "loc": ("body", field),
                "msg": (f"must be between {limits.min_capacity_kva:g} and {limits.max_capacity_kva:g} kVA"),
                "input": value,
            }
        ]
    )
