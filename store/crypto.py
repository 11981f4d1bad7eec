"""AES-256-GCM encryption of personal data at rest, under a keyring of named keys so keys can be rotated.

A sealed text value is self-describing: `enc:v1:<kid>:<base64url(nonce | ciphertext | tag)>`; a sealed
binary value is the same prefix followed by the raw nonce, ciphertext and tag. The key id says which key
opens it, so values sealed under an older key stay readable while `yekuo pii rotate-key` re-seals them
under the active key. Every value gets a fresh random 96-bit nonce. The associated data names the field
a value belongs to (e.g. `customers.document:identity_document.number`), so a ciphertext copied into
another field fails to open instead of being read as that field.

Each engine carries its keyring (store.database.create_engine binds it); the column types in
store.encrypted look it up by the engine's dialect, so every read and write through the store is covered.

Errors: PiiKeyError (a ConfigError) for a missing, malformed or unknown key; PiiDecryptError for a sealed
value that does not open (tampered bytes, another field's ciphertext, truncated value).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import os
import re
import weakref
from collections.abc import Mapping

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.engine import Engine

from ground.errors import ConfigError, YekuoError
from ground.settings import PiiSettings

log = logging.getLogger(__name__)

PREFIX = "enc:v1:"
BINARY_PREFIX = PREFIX.encode("ascii")
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
DEVELOPMENT_KEY_ID = "dev"
# Public on purpose: anyone can derive it, so it protects nothing; it only lets the demo and the tests run
# the same code path as production. `yekuo run` refuses to start with it.
_DEVELOPMENT_KEY = hashlib.sha256(b"yekuo-hub public development key; never for real personal data").digest()


class PiiKeyError(ConfigError):
    """A PII key is missing, malformed, or not in the keyring."""


class PiiDecryptError(YekuoError):
    """A sealed value does not open: tampered, truncated, or sealed for another field."""


class Keyring:
    """Named AES-256 keys; new values are sealed with the active one, any of them opens its own values."""

    def __init__(self, keys: Mapping[str, bytes], active_kid: str, *, development: bool = False) -> None:
        if not keys:
            raise PiiKeyError("a keyring needs at least one key")
        for kid, key in keys.items():
            if not KEY_ID.match(kid):
                raise PiiKeyError(f"key id {kid!r} must be 1-32 letters, digits, '_', '.' or '-'")
            if len(key) != KEY_BYTES:
                raise PiiKeyError(f"key {kid!r} is {len(key)} bytes long; AES-256 needs {KEY_BYTES}")
        if active_kid not in keys:
            raise PiiKeyError(f"the active key id {active_kid!r} is not among the keys ({', '.join(keys)})")
        self._ciphers = {kid: AESGCM(key) for kid, key in keys.items()}
        self.active_kid = active_kid
        self.development = development

    @classmethod
    def from_encoded(cls, keys: Mapping[str, str], active_kid: str | None) -> Keyring:
        """A keyring from base64-encoded keys; with one key, that key is active unless another is named."""
        decoded = {kid: _decode_key(kid, text) for kid, text in keys.items()}
        if active_kid is None:
            if len(decoded) != 1:
                raise PiiKeyError(
                    "several PII keys are configured: name the active one (YEKUO_PII__ACTIVE_KEY_ID)"
                )
            active_kid = next(iter(decoded))
        return cls(decoded, active_kid)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this keyring can open."""
        return tuple(self._ciphers)

    def seal_text(self, plaintext: str, field: str) -> str:
        """Encrypt text for one field with the active key."""
        sealed = self._seal(plaintext.encode("utf-8"), field)
        return f"{PREFIX}{self.active_kid}:{base64.urlsafe_b64encode(sealed).decode('ascii')}"

    def open_text(self, token: str, field: str) -> str:
        """Decrypt a value seal_text made for the same field."""
        kid, _, body = _split(token[len(PREFIX) :] if token.startswith(PREFIX) else "", field)
        try:
            sealed = base64.urlsafe_b64decode(body.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
            raise PiiDecryptError(f"sealed value of {field} is not valid base64: {exc}") from exc
        return self._open(kid, sealed, field).decode("utf-8")

    def seal_bytes(self, plaintext: bytes, field: str) -> bytes:
        """Encrypt bytes for one field with the active key; the prefix and key id stay readable."""
        return BINARY_PREFIX + self.active_kid.encode("ascii") + b":" + self._seal(plaintext, field)

    def open_bytes(self, value: bytes, field: str) -> bytes:
        """Decrypt a value seal_bytes made for the same field."""
        kid_end = value.find(b":", len(BINARY_PREFIX))
        if not value.startswith(BINARY_PREFIX) or kid_end < 0:
            raise PiiDecryptError(f"sealed value of {field} has no key id")
        kid = value[len(BINARY_PREFIX) : kid_end].decode("ascii", errors="replace")
        return self._open(kid, value[kid_end + 1 :], field)

    def _seal(self, plaintext: bytes, field: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._ciphers[self.active_kid].encrypt(nonce, plaintext, field.encode("utf-8"))

    def _open(self, kid: str, sealed: bytes, field: str) -> bytes:
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise PiiKeyError(
                f"a value of {field} is sealed with key {kid!r}, which is not configured "
                f"(known: {', '.join(self._ciphers)}); was the key removed before `yekuo pii rotate-key` ran?"
            )
        if len(sealed) < NONCE_BYTES + 16:
            raise PiiDecryptError(f"sealed value of {field} is truncated ({len(sealed)} bytes)")
        try:
            return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], field.encode("utf-8"))
        except InvalidTag as exc:
            raise PiiDecryptError(
                f"sealed value of {field} (key {kid!r}) does not open: "
                "it was altered or belongs to another field"
            ) from exc


def is_sealed(value: object) -> bool:
    """Whether a stored value is a sealed one (text or bytes)."""
    if isinstance(value, str):
        return value.startswith(PREFIX)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value[: len(BINARY_PREFIX)]) == BINARY_PREFIX
    return False


def sealed_key_id(value: object) -> str | None:
    """The key id a sealed value names, or None for a value that is not sealed."""
    if isinstance(value, str) and value.startswith(PREFIX):
        return value[len(PREFIX) :].split(":", 1)[0]
    if isinstance(value, bytes | bytearray | memoryview) and is_sealed(value):
        head = bytes(value[len(BINARY_PREFIX) : len(BINARY_PREFIX) + 34])
        return head.split(b":", 1)[0].decode("ascii", errors="replace")
    return None


def development_keyring() -> Keyring:
    """The keyring of the public development key: for the demo and tests, never for real data."""
    return Keyring({DEVELOPMENT_KEY_ID: _DEVELOPMENT_KEY}, DEVELOPMENT_KEY_ID, development=True)


def keyring_from_settings(pii: PiiSettings, *, allow_development: bool = True) -> Keyring:
    """The configured keyring; without keys, the development keyring if allowed, else PiiKeyError."""
    if pii.keys:
        return Keyring.from_encoded(
            {kid: secret.get_secret_value() for kid, secret in pii.keys.items()}, pii.active_key_id
        )
    if not allow_development:
        raise PiiKeyError(
            "no PII encryption key is configured: set YEKUO_PII__KEYS to a JSON object of key id -> base64 "
            "32-byte key (e.g. from `yekuo pii new-key`)"
        )
    _warn_development_key()
    return development_keyring()


@functools.cache
def _warn_development_key() -> None:
    log.warning(
        "no PII key configured (YEKUO_PII__KEYS): personal data is sealed with the public development key"
    )


def new_key() -> str:
    """A fresh random AES-256 key, base64-encoded as YEKUO_PII__KEYS expects it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


# Per dialect, because the column types see the dialect and not the engine; every engine has its own.
_keyrings: weakref.WeakKeyDictionary[sa.Dialect, Keyring] = weakref.WeakKeyDictionary()


def bind_keyring(engine: Engine, keyring: Keyring) -> None:
    """Make the engine seal and open personal data with this keyring."""
    _keyrings[engine.dialect] = keyring


def keyring_of(dialect: sa.Dialect) -> Keyring:
    """The keyring bound to the engine of this dialect."""
    keyring = _keyrings.get(dialect)
    if keyring is None:
        raise PiiKeyError("this engine has no PII keyring: create it with store.database.create_engine")
    return keyring


def _decode_key(kid: str, text: str) -> bytes:
    try:
        return base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PiiKeyError(f"PII key {kid!r} is not valid base64: {exc}") from exc


def _split(rest: str, field: str) -> tuple[str, str, str]:
    kid, separator, body = rest.partition(":")
    if not separator or not kid:
        raise PiiDecryptError(f"value of {field} is not a sealed value (enc:v1:<kid>:<data>)")
    return kid, separator, body
