"""Credentials of a benchmark run: an ephemeral signing secret and a viewer token, as a reader would have."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from pydantic import SecretStr

from api.credentials import mint_token
from yekuo.settings import AuthSettings


@dataclass(frozen=True)
class BenchCredentials:
    """Auth settings for the app under test and the headers its readers send."""

    auth: AuthSettings
    headers: dict[str, str]


def bench_credentials(ttl_s: int = 4 * 3600) -> BenchCredentials:
    """A fresh secret and a viewer token signed with it; nothing outlives the run."""
    auth = AuthSettings(jwt_secret=SecretStr(secrets.token_urlsafe(48)))
    token = mint_token(auth, sub="bench-reader", roles=["viewer"], ttl_s=ttl_s)
    return BenchCredentials(auth, {"Authorization": f"Bearer {token}"})
