"""Credentials of a benchmark run: an ephemeral signing secret, a viewer token for the readers and an
integrator key for the legacy system that pushes, as each would have."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from pydantic import SecretStr

from api.credentials import hash_api_key, mint_token
from ground.settings import ApiKeySettings, AuthSettings


@dataclass(frozen=True)
class BenchCredentials:
    """Auth settings for the app under test, the headers its readers send and the pushing system's key."""

    auth: AuthSettings
    headers: dict[str, str]
    push_api_key: str


def bench_credentials(ttl_s: int = 4 * 3600) -> BenchCredentials:
    """A fresh secret, a viewer token signed with it and an integrator key; nothing outlives the run."""
    push_api_key = secrets.token_urlsafe(32)
    pusher = ApiKeySettings(name="bench-marketing", sha256=hash_api_key(push_api_key), roles=["integrator"])
    auth = AuthSettings(jwt_secret=SecretStr(secrets.token_urlsafe(48)), api_keys=[pusher])
    token = mint_token(auth, sub="bench-reader", roles=["viewer"], ttl_s=ttl_s)
    return BenchCredentials(auth, {"Authorization": f"Bearer {token}"}, push_api_key)
