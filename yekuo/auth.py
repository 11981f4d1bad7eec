"""`yekuo auth token|hash-key`: mint a bearer token with the configured secret; hash an API key."""

from __future__ import annotations

import argparse
import sys

from api.credentials import CredentialsError, hash_api_key, mint_token
from ground.settings import Settings


def _token(args: argparse.Namespace) -> int:
    try:
        token = mint_token(Settings().auth, sub=args.sub, roles=args.role, scopes=args.scope, ttl_s=args.ttl)
    except CredentialsError as exc:
        print(f"yekuo auth token: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


def _hash_key(args: argparse.Namespace) -> int:
    print(hash_api_key(args.key))
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `auth` and its subcommands to the yekuo command."""
    auth = commands.add_parser("auth", help="API credentials: mint tokens, hash API keys")
    subcommands = auth.add_subparsers(dest="auth_command", required=True)
    token = subcommands.add_parser("token", help="print a bearer token signed with YEKUO_AUTH__JWT_SECRET")
    token.add_argument("--sub", required=True, help="who the token names (recorded as the caller)")
    token.add_argument(
        "--role", action="append", required=True, help="viewer, operator, integrator or admin; repeatable"
    )
    token.add_argument("--scope", action="append", default=[], help="extra permission, e.g. pii:read")
    token.add_argument(
        "--ttl", type=int, default=None, help="lifetime in seconds (default YEKUO_AUTH__TOKEN_TTL_S)"
    )
    token.set_defaults(func=_token)
    hash_key = subcommands.add_parser(
        "hash-key", help="print the SHA-256 of an API key for YEKUO_AUTH__API_KEYS"
    )
    hash_key.add_argument("key", help="the API key a legacy system will send in X-API-Key")
    hash_key.set_defaults(func=_hash_key)
