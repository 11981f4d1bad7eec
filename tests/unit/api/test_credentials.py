"""Tokens and API keys: what is minted verifies, what is tampered with does not, and the `yekuo auth` CLI."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import SecretStr, ValidationError

from api.credentials import (
    CredentialsError,
    TokenCache,
    TokenExpiredError,
    hash_api_key,
    mint_token,
    verify_api_key,
    verify_token,
)
from ground import clock
from ground.settings import ApiKeySettings, AuthSettings
from tests.support.auth import INTEGRATOR_API_KEY, INTEGRATOR_NAME, TEST_AUTH, TEST_SECRET
from yekuo.cli import main


def test_a_minted_token_names_its_caller_roles_and_scopes() -> None:
    caller = verify_token(
        TEST_AUTH, mint_token(TEST_AUTH, sub="alice", roles=["viewer"], scopes=["pii:read"])
    )
    assert (caller.sub, caller.roles, caller.scopes, caller.via) == (
        "alice",
        {"viewer"},
        {"pii:read"},
        "token",
    )


def test_a_token_is_checked_against_the_clock_with_leeway() -> None:
    issued = time.time() - 3600
    stale = mint_token(TEST_AUTH, sub="alice", roles=["viewer"], ttl_s=3600 - 10, now=issued)
    assert verify_token(TEST_AUTH, stale).sub == "alice"  # 10 s past expiry, within the 30 s leeway
    expired = mint_token(TEST_AUTH, sub="alice", roles=["viewer"], ttl_s=3600 - 60, now=issued)
    with pytest.raises(TokenExpiredError, match="expired"):
        verify_token(TEST_AUTH, expired)


def test_token_lifetimes_follow_the_hub_clock_not_the_wall_clock() -> None:
    # Both times lie far from the wall clock: only the hub's clock can make these checks come out so.
    minted_at = datetime(2031, 3, 1, tzinfo=UTC)
    with clock.frozen_at(minted_at) as hub_clock:
        token = mint_token(TEST_AUTH, sub="alice", roles=["viewer"], ttl_s=600)
        assert jwt.decode(token, options={"verify_signature": False})["iat"] == int(minted_at.timestamp())
        assert verify_token(TEST_AUTH, token).sub == "alice"
        hub_clock.advance(timedelta(seconds=600 + 31))
        with pytest.raises(TokenExpiredError, match="expired"):
            verify_token(TEST_AUTH, token)
        hub_clock.now = minted_at - timedelta(seconds=31)
        with pytest.raises(TokenExpiredError, match="not valid yet"):
            verify_token(TEST_AUTH, token)


def test_lifetime_claims_that_are_not_numbers_are_refused() -> None:
    claims = {"sub": "eve", "iss": TEST_AUTH.issuer, "aud": TEST_AUTH.audience, "exp": "tomorrow"}
    with pytest.raises(CredentialsError, match="exp claim must be a number"):
        verify_token(TEST_AUTH, jwt.encode(claims, TEST_SECRET, algorithm="HS256"))


def test_a_token_signed_with_another_algorithm_is_refused() -> None:
    # Only HS256 is accepted, whatever algorithm a token names in its header.
    claims = {"sub": "eve", "iss": TEST_AUTH.issuer, "aud": TEST_AUTH.audience, "exp": int(time.time()) + 60}
    forged = jwt.encode(claims, TEST_SECRET * 2, algorithm="HS512")
    with pytest.raises(CredentialsError):
        verify_token(TEST_AUTH, forged)


def test_api_keys_are_matched_by_hash_only() -> None:
    caller = verify_api_key(TEST_AUTH, INTEGRATOR_API_KEY)
    assert (caller.sub, caller.roles, caller.via) == (INTEGRATOR_NAME, {"integrator"}, "api_key")
    assert INTEGRATOR_API_KEY not in TEST_AUTH.model_dump_json()
    with pytest.raises(CredentialsError):
        verify_api_key(TEST_AUTH, hash_api_key(INTEGRATOR_API_KEY))  # the hash itself is no key


def test_settings_refuse_a_key_entry_that_is_not_a_hash() -> None:
    with pytest.raises(ValueError, match="sha256"):
        ApiKeySettings(name="pms", sha256="plaintext-key", roles=["integrator"])


def test_the_cli_mints_a_verifiable_token_and_hashes_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("YEKUO_AUTH__JWT_SECRET", TEST_SECRET)
    assert (
        main(["auth", "token", "--sub", "ops", "--role", "operator", "--scope", "pii:read", "--ttl", "60"])
        == 0
    )
    caller = verify_token(AuthSettings(jwt_secret=SecretStr(TEST_SECRET)), capsys.readouterr().out.strip())
    assert (caller.sub, caller.roles, caller.scopes) == ("ops", {"operator"}, {"pii:read"})
    assert main(["auth", "hash-key", "k"]) == 0
    assert capsys.readouterr().out.strip() == hash_api_key("k")


def test_the_cli_and_the_hub_refuse_to_run_without_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: object
) -> None:
    monkeypatch.delenv("YEKUO_AUTH__JWT_SECRET", raising=False)
    monkeypatch.setenv("YEKUO_DB_URL", f"sqlite:///{tmp_path}/hub.db")
    assert main(["auth", "token", "--sub", "x", "--role", "admin"]) == 1
    assert main(["run"]) == 1
    assert "YEKUO_AUTH__JWT_SECRET" in capsys.readouterr().err


def test_a_cached_token_is_refused_the_moment_it_expires_within_the_cache_ttl() -> None:
    minted_at = datetime(2031, 3, 1, tzinfo=UTC)
    with clock.frozen_at(minted_at) as hub_clock:
        tokens = TokenCache(TEST_AUTH, ttl_s=3600)
        token = mint_token(TEST_AUTH, sub="alice", roles=["viewer"], ttl_s=60)
        assert tokens.verify(token).sub == "alice"
        hub_clock.advance(timedelta(seconds=60 + TEST_AUTH.leeway_s))
        with pytest.raises(TokenExpiredError, match="expired"):
            tokens.verify(token)


def test_the_signature_is_checked_once_per_ttl_by_the_hub_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    with clock.frozen_at(datetime(2031, 3, 1, tzinfo=UTC)) as hub_clock:
        tokens = TokenCache(TEST_AUTH, ttl_s=60)
        token = mint_token(TEST_AUTH, sub="alice", roles=["viewer"], ttl_s=3600)
        for _ in range(3):
            tokens.verify(token)
        hub_clock.advance(timedelta(seconds=59))
        tokens.verify(token)
        assert len(decoded) == 1
        hub_clock.advance(timedelta(seconds=1))
        tokens.verify(token)
        assert len(decoded) == 2
        uncached = TokenCache(TEST_AUTH, ttl_s=0)
        uncached.verify(token)
        uncached.verify(token)
        assert len(decoded) == 4


def test_a_refused_token_is_not_cached_and_the_cache_keeps_at_most_its_bound() -> None:
    tokens = TokenCache(TEST_AUTH, ttl_s=60, max_entries=2)
    good = mint_token(TEST_AUTH, sub="alice", roles=["viewer"])
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    for _ in range(2):
        with pytest.raises(CredentialsError, match="signature"):
            tokens.verify(tampered)
    callers = [mint_token(TEST_AUTH, sub=name, roles=["viewer"]) for name in ("a", "b", "c")]
    assert [tokens.verify(token).sub for token in callers] == ["a", "b", "c"]
    assert len(tokens._entries) == 2
    assert tokens.verify(good).sub == "alice"


@pytest.mark.parametrize("seconds", [-1.0, 86_401.0, float("inf"), float("nan")])
def test_the_verified_token_cache_lasts_at_most_a_day(seconds: float) -> None:
    with pytest.raises(ValidationError, match="verified_cache_s"):
        AuthSettings(jwt_secret=SecretStr(TEST_SECRET), verified_cache_s=seconds)
    assert AuthSettings(jwt_secret=SecretStr(TEST_SECRET), verified_cache_s=86_400).verified_cache_s == 86_400
