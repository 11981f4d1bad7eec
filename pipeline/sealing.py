"""Personal data in events on the bus: sealed field by field when staged, opened by the hub's own consumers.

Every field a canonical model marks x-pii (canonical_model.pii) leaves the hub sealed with the same
AES-256-GCM keyring and key ids as personal data at rest (store/crypto.py): enc:v1:<key id>:<data>.
A consumer bound to the exchange without the key sees the rest of the event but not the personal data.
The associated data of each value is the event's dataschema, '#' and the field's path
(urn:yekuo:schema:customer.v1#identity_document.number), so a sealed value copied into another field or
another kind of event does not open. Which model an event's data follows is read from its dataschema;
data of a schema the hub does not know is left as it is (the hub stages none).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from functools import cache
from typing import Any

from pydantic import BaseModel

from canonical_model.envelope import CloudEvent
from canonical_model.pii import PiiPath, pii_paths
from canonical_model.registry import MODELS, schema_uri
from ground.errors import YekuoError
from store.crypto import Keyring, PiiDecryptError, PiiKeyError, is_sealed
from store.encrypted import map_at


class SealedFieldError(YekuoError):
    """An event's sealed personal field does not open (unknown key id, altered or misplaced value)."""


@cache
def _personal_paths() -> dict[str, tuple[PiiPath, ...]]:
    """dataschema URI -> the paths of its personal fields, for the models that have any."""
    models: dict[str, type[BaseModel]] = {schema_uri(name): model for model, name in MODELS.values()}
    return {uri: paths for uri, model in models.items() if (paths := pii_paths(model))}


def field_binding(dataschema: str, path: PiiPath) -> str:
    """The associated data a personal value of this kind of event is sealed with."""
    return f"{dataschema}#{'.'.join(path)}"


def seal_event_data(data: dict[str, Any], dataschema: str, keyring: Callable[[], Keyring]) -> dict[str, Any]:
    """A copy of an event's data with every personal field sealed under the keyring's active key.

    keyring is asked for only when the data has a personal field to seal.
    """
    for path in _personal_paths().get(dataschema, ()):
        seal = functools.partial(_seal, keyring, field_binding(dataschema, path))
        data = map_at(data, path, seal)
    return data


def open_event_data(data: dict[str, Any], dataschema: str, keyring: Callable[[], Keyring]) -> dict[str, Any]:
    """A copy of an event's data with every sealed personal field opened (plain ones are left as they are).

    keyring is asked for only when a sealed value is met. Raises SealedFieldError naming the field when a
    sealed value does not open.
    """
    for path in _personal_paths().get(dataschema, ()):
        opening = functools.partial(_open, keyring, field_binding(dataschema, path))
        data = map_at(data, path, opening)
    return data


def decode_event(body: bytes, keyring: Callable[[], Keyring]) -> CloudEvent:
    """The CloudEvent of a bus message, its personal fields opened: the one decode point of in-hub consumers.

    keyring gives the keyring to open them with, asked for only when the event holds a sealed value.
    Raises pydantic.ValidationError when the body is not a CloudEvent, and SealedFieldError when a
    personal field does not open.
    """
    event = CloudEvent.model_validate_json(body)
    if event.dataschema not in _personal_paths():
        return event
    return event.model_copy(update={"data": open_event_data(event.data, event.dataschema, keyring)})


def open_event_body(body: str, keyring: Callable[[], Keyring]) -> str:
    """An event's JSON text with its sealed personal fields opened, for a reader allowed to see them.

    Text that is not such an event, or holds nothing sealed, comes back as it is. Raises SealedFieldError
    when a personal field does not open.
    """
    try:
        event = json.loads(body)
    except ValueError:
        return body
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        return body
    dataschema = str(event.get("dataschema"))
    opened = open_event_data(event["data"], dataschema, keyring)
    if opened == event["data"]:
        return body
    return json.dumps({**event, "data": opened}, ensure_ascii=False)


def _seal(keyring: Callable[[], Keyring], binding: str, value: str) -> str:
    # A value that is sealed already (an event staged again as it came) is not sealed twice.
    return value if is_sealed(value) else keyring().seal_text(value, binding)


def _open(keyring: Callable[[], Keyring], binding: str, value: str) -> str:
    if not is_sealed(value):
        # Staged before events were sealed: it is read as it is.
        return value
    try:
        return keyring().open_text(value, binding)
    except (PiiDecryptError, PiiKeyError) as exc:
        raise SealedFieldError(f"personal field {binding} does not open: {exc}") from exc
