"""Building blocks shared by the canonical models."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict


class CanonicalModel(BaseModel):
    """Base of every canonical model: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class GeoPoint(CanonicalModel):
    """A WGS84 position (经纬度)."""

    lon: float = Field(ge=-180, le=180, description="longitude, WGS84 (经度)")
    lat: float = Field(ge=-90, le=90, description="latitude, WGS84 (纬度)")


class SourceRef(CanonicalModel):
    """Where a canonical record came from in a legacy system."""

    system: str = Field(min_length=1, description="legacy system, e.g. marketing, pms, dispatch")
    record_type: str = Field(min_length=1, description="record kind in that system")
    key: str = Field(min_length=1, description="natural key in that system")


class UrbanRural(StrEnum):
    """Urban or rural supply area (城乡类别); sets the low-voltage ceiling."""

    URBAN = "urban"
    RURAL = "rural"


# The sealed form of a personal value (store/crypto.py): enc:v1:<key id>:<base64url(nonce|ciphertext|tag)>.
SEALED_PATTERN = r"^enc:v1:[A-Za-z0-9_.-]{1,32}:[A-Za-z0-9_-]+={0,2}$"
SEALED_FORM = (
    "Personal data (x-pii): in events on the bus it travels sealed, as enc:v1:<key id>:<base64url of "
    "nonce, ciphertext and tag>, AES-256-GCM under the hub's PII keyring, with the event's dataschema, "
    "'#' and this field's path (e.g. contacts.[].phone) as associated data; the hub's API masks it "
    "unless the caller may read personal data."
)


def pii(description: str) -> Callable[[JsonDict], None]:
    """Field schema extras marking personal data, which the API masks, the store and the bus seal.

    The field's schema becomes anyOf its plain form and the sealed form, so a document holding either
    satisfies it; x-pii stays on the field itself, where canonical_model.pii finds it.
    """

    def mark(schema: JsonDict) -> None:
        plain = {
            key: schema.pop(key) for key in ("type", "minLength", "maxLength", "pattern") if key in schema
        }
        sealed: JsonDict = {"type": "string", "pattern": SEALED_PATTERN, "description": "sealed form"}
        schema.update(
            {"x-pii": True, "description": f"{description}. {SEALED_FORM}", "anyOf": [plain, sealed]}
        )

    return mark
