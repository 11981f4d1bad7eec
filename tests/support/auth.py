"""Credentials for tests: auth settings with a fixed secret and a known integrator API key.

app = hub_app(engine, auth=TEST_AUTH)  (tests/support/app.py)
client.get("/v1/applications", headers=bearer("viewer"))
client.get("/v1/customers/C1", headers=bearer("viewer", scopes=["pii:read"]))
client.post("/soap/marketing", content=..., headers=api_key_headers())
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import SecretStr

from api.credentials import hash_api_key, mint_token
from ground.settings import ApiKeySettings, AuthSettings

TEST_SECRET = "yekuo-test-secret-0123456789abcdef0123456789"
INTEGRATOR_API_KEY = "test-integrator-key-marketing"
INTEGRATOR_NAME = "marketing"

TEST_AUTH = AuthSettings(
    jwt_secret=SecretStr(TEST_SECRET),
    api_keys=[
        ApiKeySettings(name=INTEGRATOR_NAME, sha256=hash_api_key(INTEGRATOR_API_KEY), roles=["integrator"])
    ],
)


def token(*roles: str, scopes: Iterable[str] = (), sub: str = "tester", ttl_s: int = 3600) -> str:
    """A valid bearer token signed with the test secret."""
    return mint_token(TEST_AUTH, sub=sub, roles=roles, scopes=scopes, ttl_s=ttl_s)


def bearer(*roles: str, scopes: Iterable[str] = (), sub: str = "tester") -> dict[str, str]:
    """Request headers carrying a valid bearer token with these roles and extra scopes."""
    return {"Authorization": f"Bearer {token(*roles, scopes=scopes, sub=sub)}"}


def api_key_headers() -> dict[str, str]:
    """Request headers carrying the integrator's API key (the marketing system's push)."""
    return {"X-API-Key": INTEGRATOR_API_KEY}
