"""Callers' credentials: HS256 bearer tokens (PyJWT) and hashed API keys for legacy systems.

A token names its caller in `sub`, its roles in a `roles` claim and extra permissions (e.g. `pii:read`) in a
space-separated `scope` claim; issuer, audience and expiry are always checked. An API key is looked up by its
SHA-256, so the configuration never holds a key itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from ground import clock
from ground.settings import AuthSettings

ALGORITHM = "HS256"
# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = 32


class CredentialsError(Exception):
    """The presented credentials are missing, malformed, expired or not ours; the message says which."""


class TokenExpiredError(CredentialsError):
    """The bearer token was good but its lifetime has passed (or not begun), by the hub's clock."""


@dataclass(frozen=True)
class Caller:
    """Who presented valid credentials, with the roles and extra scopes those credentials carry."""

    sub: str
    roles: frozenset[str]
    scopes: frozenset[str]
    via: str  # "token" or "api_key"


def hash_api_key(key: str) -> str:
    """The hex SHA-256 of an API key, as configured in YEKUO_AUTH__API_KEYS."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def signing_secret(auth: AuthSettings) -> str:
    """The configured secret, refusing a missing or short one (a short HMAC key can be brute-forced)."""
    if auth.jwt_secret is None:
        raise CredentialsError("no token secret is configured (YEKUO_AUTH__JWT_SECRET)")
    secret = auth.jwt_secret.get_secret_value()
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise CredentialsError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret


def mint_token(
    auth: AuthSettings,
    *,
    sub: str,
    roles: Iterable[str],
    scopes: Iterable[str] = (),
    ttl_s: int | None = None,
    now: float | None = None,
) -> str:
    """A signed bearer token for `sub` with these roles and extra scopes, valid for ttl_s seconds."""
    issued = int(clock.now().timestamp() if now is None else now)
    claims = {
        "sub": sub,
        "iss": auth.issuer,
        "aud": auth.audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + (auth.token_ttl_s if ttl_s is None else ttl_s),
        "roles": sorted(set(roles)),
        "scope": " ".join(sorted(set(scopes))),
    }
    return jwt.encode(claims, signing_secret(auth), algorithm=ALGORITHM)


def _check_lifetime(claims: dict[str, Any], leeway_s: float) -> None:
    now = clock.now().timestamp()
    for claim in ("exp", "nbf"):
        value = claims.get(claim)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise CredentialsError(f"the token's {claim} claim must be a number of seconds")
    if now - leeway_s >= claims["exp"]:
        raise TokenExpiredError("the token has expired")
    if "nbf" in claims and now + leeway_s < claims["nbf"]:
        raise TokenExpiredError("the token is not valid yet")


# What a caller is told about a refused token, by PyJWT's error class, most specific first. PyJWT's own
# messages can quote the decoded bytes of the token, so they stay out of answers and logs.
_TOKEN_REFUSALS: tuple[tuple[type[jwt.InvalidTokenError], str], ...] = (
    (jwt.InvalidAudienceError, "the token is meant for another audience"),
    (jwt.InvalidIssuerError, "the token was issued by another issuer"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim (sub, exp, iss, aud)"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, f"the token is not signed with {ALGORITHM}"),
    (jwt.DecodeError, "the token is not a well-formed JWT"),
)


def _refusal_of(error: jwt.InvalidTokenError) -> str:
    """A fixed description of why a token was refused, safe to send to any caller."""
    for kind, message in _TOKEN_REFUSALS:
        if isinstance(error, kind):
            return message
    return "the token is not valid"


def verify_token(auth: AuthSettings, token: str) -> Caller:
    """The caller a bearer token names, once its signature, issuer, audience and lifetime check out."""
    return _verified(auth, token)[0]


def _verified(auth: AuthSettings, token: str) -> tuple[Caller, dict[str, Any]]:
    """The caller a token names and its exp and nbf claims, once signature, issuer, audience and lifetime
    check out."""
    try:
        # Lifetimes are checked below against the hub's clock, which PyJWT cannot be given.
        claims = jwt.decode(
            token,
            signing_secret(auth),
            algorithms=[ALGORITHM],
            audience=auth.audience,
            issuer=auth.issuer,
            options={
                "require": ["sub", "exp", "iss", "aud"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise CredentialsError(_refusal_of(exc)) from exc
    lifetime = {claim: claims[claim] for claim in ("exp", "nbf") if claim in claims}
    _check_lifetime(lifetime, auth.leeway_s)
    roles = claims.get("roles", [])
    scope = claims.get("scope", "")
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise CredentialsError("the token's roles claim must be a list of role names")
    if not isinstance(scope, str):
        raise CredentialsError("the token's scope claim must be a space-separated string")
    caller = Caller(sub=claims["sub"], roles=frozenset(roles), scopes=frozenset(scope.split()), via="token")
    return caller, lifetime


class TokenCache:
    """Bearer tokens verified within the last ttl_s seconds of the hub's clock, at most max_entries of them.

    A caller sends the same token with every request, and its signature check and claim decoding cost about
    as much as the rest of the access control together. A cached token still has its lifetime checked on
    every request, so it is refused the moment it expires; only what the signature proves is reused, and
    for no longer than ttl_s, so a change of the secret or the audience reaches every token within it. A
    refused token is never cached. ttl_s 0 verifies every request.
    """

    def __init__(self, auth: AuthSettings, *, ttl_s: float, max_entries: int = 4096) -> None:
        self.auth = auth
        self.ttl = timedelta(seconds=ttl_s)
        self.max_entries = max_entries
        self._entries: dict[str, tuple[datetime, Caller, dict[str, Any]]] = {}

    def verify(self, token: str) -> Caller:
        """The caller the token names, as verify_token answers it."""
        now = clock.now()
        entry = self._entries.get(token)
        if entry is not None and now < entry[0]:
            _check_lifetime(entry[2], self.auth.leeway_s)
            return entry[1]
        self._entries.pop(token, None)
        caller, lifetime = _verified(self.auth, token)
        if self.ttl:
            if len(self._entries) >= self.max_entries:
                # Dicts keep insertion order: the first entry is the one verified longest ago.
                del self._entries[next(iter(self._entries))]
            self._entries[token] = (now + self.ttl, caller, lifetime)
        return caller


def verify_api_key(auth: AuthSettings, key: str) -> Caller:
    """The legacy system a key belongs to; keys are compared by hash in constant time."""
    presented = hash_api_key(key)
    for configured in auth.api_keys:
        if hmac.compare_digest(presented, configured.sha256):
            return Caller(
                sub=configured.name,
                roles=frozenset(configured.roles),
                scopes=frozenset(configured.scopes),
                via="api_key",
            )
    raise CredentialsError("the API key is not known")
