"""Dashboard sessions: the hub token a user pasted, sealed in an HttpOnly cookie, and its CSRF token.

The cookie holds the bearer token itself, AES-256-GCM sealed under a key derived (HKDF-SHA256) from the
token signing secret (YEKUO_AUTH__JWT_SECRET): whoever can open a session could mint tokens anyway, rotating
the secret ends every session, and no second secret has to be kept. Every request re-verifies the sealed
token, so a session lives exactly as long as its token and carries the token's roles and scopes.

Each session has a random synchronizer token for CSRF: pages put it in their forms, and every state-changing
dashboard request must send it back (form field or header) or is refused with 403. The login form, sent
before any session exists, is bound the same way to a short-lived pre-session cookie.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from api.credentials import Caller, CredentialsError, signing_secret, verify_token
from ground import clock
from ground.settings import AuthSettings

SESSION_COOKIE = "yekuo_session"
LOGIN_COOKIE = "yekuo_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
# A login form left open longer than this must be reloaded before it is sent.
LOGIN_FORM_TTL_S = 1800
_NONCE_BYTES = 12
_SESSION_PURPOSE = b"yekuo-ui-session-v1"
_LOGIN_PURPOSE = b"yekuo-ui-login-v1"


class SessionError(Exception):
    """A cookie that is missing, tampered with, sealed under another secret, or whose token is refused."""


@dataclass(frozen=True)
class Session:
    """An open dashboard session: who is logged in, the token's expiry and the session's CSRF token."""

    caller: Caller
    token: str
    csrf: str
    expires_at: int  # the token's exp, Unix seconds


class SessionSeal:
    """Seals and opens the dashboard's cookies under a key derived from the token signing secret."""

    def __init__(self, auth: AuthSettings) -> None:
        self.auth = auth

    def _cipher(self) -> AESGCM:
        try:
            secret = signing_secret(self.auth)
        except CredentialsError as exc:
            raise SessionError(str(exc)) from exc
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"yekuo dashboard cookies").derive(
            secret.encode("utf-8")
        )
        return AESGCM(key)

    def _seal(self, payload: dict[str, Any], purpose: bytes) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, json.dumps(payload).encode("utf-8"), purpose)
        return base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def _open(self, value: str, purpose: bytes) -> dict[str, Any]:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            plain = self._cipher().decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], purpose)
            payload = json.loads(plain)
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SessionError("the cookie was not sealed by this hub") from exc
        if not isinstance(payload, dict):
            raise SessionError("the cookie was not sealed by this hub")
        return payload

    def start(self, token: str) -> tuple[Session, str]:
        """A new session for a pasted token and its cookie value; SessionError when the token is refused."""
        try:
            caller = verify_token(self.auth, token)
        except CredentialsError as exc:
            raise SessionError(str(exc)) from exc
        session = Session(caller, token, secrets.token_urlsafe(32), _expiry_of(token))
        return session, self._seal({"token": token, "csrf": session.csrf}, _SESSION_PURPOSE)

    def open(self, cookie: str) -> Session:
        """The session a cookie stands for, its token verified again now."""
        payload = self._open(cookie, _SESSION_PURPOSE)
        token, csrf = payload.get("token"), payload.get("csrf")
        if not isinstance(token, str) or not isinstance(csrf, str):
            raise SessionError("the session cookie is incomplete")
        try:
            caller = verify_token(self.auth, token)
        except CredentialsError as exc:
            raise SessionError(str(exc)) from exc
        return Session(caller, token, csrf, _expiry_of(token))

    def login_form(self) -> tuple[str, str]:
        """A CSRF token for a login form and the pre-session cookie that binds it."""
        csrf = secrets.token_urlsafe(32)
        expires = int(clock.now().timestamp()) + LOGIN_FORM_TTL_S
        return csrf, self._seal({"csrf": csrf, "exp": expires}, _LOGIN_PURPOSE)

    def check_login_form(self, cookie: str | None, presented: str | None) -> None:
        """Refuse a login form whose CSRF token is missing, wrong or expired (SessionError)."""
        if cookie is None or not presented:
            raise SessionError("the login form has no CSRF token: reload the page")
        payload = self._open(cookie, _LOGIN_PURPOSE)
        expires = payload.get("exp")
        if not isinstance(expires, int) or clock.now().timestamp() >= expires:
            raise SessionError("the login form has expired: reload the page")
        check_csrf(str(payload.get("csrf", "")), presented)


def check_csrf(expected: str, presented: str | None) -> None:
    """Refuse (SessionError) unless the presented CSRF token is the expected one."""
    if not presented or not hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8")):
        raise SessionError("the CSRF token is missing or wrong: reload the page")


def _expiry_of(token: str) -> int:
    # The token verified just before: its payload is well-formed JSON with a numeric exp.
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return int(claims["exp"])
