"""AES-256-GCM sealing: values round-trip, and a changed byte, another field or an unknown key is refused."""

from __future__ import annotations

import base64

import pytest

from ground.settings import PiiSettings
from store.crypto import (
    DEVELOPMENT_KEY_ID,
    Keyring,
    PiiDecryptError,
    PiiKeyError,
    is_sealed,
    keyring_from_settings,
    new_key,
    sealed_key_id,
)

OLD = Keyring({"k1": b"\x01" * 32}, "k1")
IDENTITY_NUMBER = "41130219850317002X"
FIELD = "customers.document:identity_document.number"


def test_text_round_trips_and_names_its_key_without_showing_the_value() -> None:
    token = OLD.seal_text(IDENTITY_NUMBER, FIELD)

    assert token.startswith("enc:v1:k1:")
    assert IDENTITY_NUMBER not in token
    assert is_sealed(token) and sealed_key_id(token) == "k1"
    assert OLD.open_text(token, FIELD) == IDENTITY_NUMBER


def test_every_seal_uses_a_fresh_nonce() -> None:
    assert OLD.seal_text(IDENTITY_NUMBER, FIELD) != OLD.seal_text(IDENTITY_NUMBER, FIELD)


def test_bytes_round_trip_with_a_readable_prefix() -> None:
    body = b'{"data":{"phone":"13912345678"}}'
    sealed = OLD.seal_bytes(body, "outbox.body")

    assert sealed.startswith(b"enc:v1:k1:") and b"13912345678" not in sealed
    assert sealed_key_id(sealed) == "k1"
    assert OLD.open_bytes(sealed, "outbox.body") == body


def test_a_flipped_byte_is_refused() -> None:
    token = OLD.seal_text(IDENTITY_NUMBER, FIELD)
    prefix, data = token.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(data))
    raw[-1] ^= 0x01
    tampered = f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"

    with pytest.raises(PiiDecryptError, match="altered or belongs to another field"):
        OLD.open_text(tampered, FIELD)


def test_a_flipped_byte_in_sealed_bytes_is_refused() -> None:
    sealed = bytearray(OLD.seal_bytes(b"payload", "outbox.body"))
    sealed[20] ^= 0x80

    with pytest.raises(PiiDecryptError):
        OLD.open_bytes(bytes(sealed), "outbox.body")


def test_a_ciphertext_moved_to_another_field_does_not_open() -> None:
    token = OLD.seal_text(IDENTITY_NUMBER, FIELD)

    with pytest.raises(PiiDecryptError):
        OLD.open_text(token, "customers.document:contacts.[].phone")


def test_a_value_under_an_unknown_key_names_that_key() -> None:
    token = OLD.seal_text(IDENTITY_NUMBER, FIELD)
    other = Keyring({"k2": b"\x02" * 32}, "k2")

    with pytest.raises(PiiKeyError, match="'k1'"):
        other.open_text(token, FIELD)


def test_a_key_id_swapped_in_the_prefix_does_not_open() -> None:
    both = Keyring({"k1": b"\x01" * 32, "k2": b"\x02" * 32}, "k2")
    token = OLD.seal_text(IDENTITY_NUMBER, FIELD).replace("enc:v1:k1:", "enc:v1:k2:")

    with pytest.raises(PiiDecryptError):
        both.open_text(token, FIELD)


def test_a_rotated_keyring_opens_old_values_and_seals_new_ones_with_the_active_key() -> None:
    token = OLD.seal_text(IDENTITY_NUMBER, FIELD)
    rotated = Keyring({"k1": b"\x01" * 32, "k2": b"\x02" * 32}, "k2")

    assert rotated.open_text(token, FIELD) == IDENTITY_NUMBER
    assert sealed_key_id(rotated.seal_text(IDENTITY_NUMBER, FIELD)) == "k2"


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        ({"k1": b"short"}, "k1", "32"),
        ({"k:1": b"\x01" * 32}, "k:1", "key id"),
        ({"k1": b"\x01" * 32}, "k9", "not among the keys"),
        ({}, "k1", "at least one key"),
    ],
)
def test_malformed_keyrings_are_refused(keys: dict[str, bytes], active: str, message: str) -> None:
    with pytest.raises(PiiKeyError, match=message):
        Keyring(keys, active)


def test_settings_give_the_keyring_and_one_key_is_active_by_itself() -> None:
    settings = PiiSettings.model_validate({"keys": {"k2026": new_key()}})

    keyring = keyring_from_settings(settings, allow_development=False)

    assert keyring.active_kid == "k2026" and not keyring.development


def test_several_keys_need_an_active_key_id() -> None:
    settings = PiiSettings.model_validate({"keys": {"a": new_key(), "b": new_key()}})

    with pytest.raises(PiiKeyError, match="ACTIVE_KEY_ID"):
        keyring_from_settings(settings)


def test_without_keys_production_refuses_and_the_development_key_is_explicit() -> None:
    with pytest.raises(PiiKeyError, match="YEKUO_PII__KEYS"):
        keyring_from_settings(PiiSettings(), allow_development=False)

    development = keyring_from_settings(PiiSettings())
    assert development.development and development.active_kid == DEVELOPMENT_KEY_ID


def test_a_key_that_is_not_base64_is_refused() -> None:
    with pytest.raises(PiiKeyError, match="base64"):
        keyring_from_settings(PiiSettings.model_validate({"keys": {"k1": "not base64!"}}))
