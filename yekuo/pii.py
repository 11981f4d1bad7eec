"""`yekuo pii new-key|rotate-key`: make a key, and re-encrypt every stored personal value with the active key.

Rotation: add the new key to YEKUO_PII__KEYS beside the old ones, make it YEKUO_PII__ACTIVE_KEY_ID, restart
the hubs (they seal new values with it and still open old ones), run `yekuo pii rotate-key`, and remove an
old key from the settings once the rotation reports no value left under it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import sqlalchemy as sa

from ground.errors import YekuoError
from ground.settings import Settings
from store.audit import append_entry
from store.crypto import keyring_from_settings, new_key
from store.database import create_engine
from store.encrypted import ColumnRotation, key_usage, reseal
from store.schema import metadata
from yekuo.audit import process_actor


def rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Re-seal every personal value under the active key, print counts and chain a pii.key_rotated entry."""
    try:
        keyring = keyring_from_settings(settings.pii, allow_development=False)
    except YekuoError as exc:
        print(f"yekuo pii rotate-key: {exc}", file=sys.stderr)
        return 1
    engine = create_engine(args.db_url or settings.db_url, keyring=keyring)
    try:
        results = reseal(engine, metadata, batch_size=args.batch, progress=_progress)
        remaining: Counter[str] = Counter()
        for counts in key_usage(engine, metadata).values():
            remaining.update(counts)
        with engine.begin() as conn:
            append_entry(
                conn,
                actor=args.operator or process_actor(),
                action="pii.key_rotated",
                subject=f"key/{keyring.active_kid}",
                detail={
                    "resealed": {result.column: result.resealed for result in results if result.resealed},
                    "values_per_key": dict(sorted(remaining.items())),
                },
            )
    except YekuoError as exc:
        print(f"yekuo pii rotate-key: {exc}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        print(f"yekuo pii rotate-key: database error on {where}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    for result in results:
        print(f"{result.column:<32} {result.examined:>9} examined {result.resealed:>9} re-encrypted")
    print(f"active key {keyring.active_kid}; personal values per key now: {_counts(remaining)}")
    stale = sorted(kid for kid in remaining if kid != keyring.active_kid)
    if not stale:
        print("no value is sealed with any other key: older keys can be removed from YEKUO_PII__KEYS")
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `yekuo pii` subcommands."""
    pii = commands.add_parser("pii", help="encryption of personal data at rest")
    pii_commands = pii.add_subparsers(dest="pii_command", required=True)
    make = pii_commands.add_parser("new-key", help="print a fresh random key for YEKUO_PII__KEYS")
    make.set_defaults(func=lambda args: _print_new_key())
    rotate_parser = pii_commands.add_parser(
        "rotate-key", help="re-encrypt every stored personal value with the active key (resumable)"
    )
    rotate_parser.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    rotate_parser.add_argument(
        "--batch", type=int, default=500, help="rows per transaction (default: %(default)s)"
    )
    rotate_parser.add_argument(
        "--operator", help="who is rotating, for the audit log (default: OS user@host)"
    )
    rotate_parser.set_defaults(func=lambda args: rotate(args, Settings()))


def _print_new_key() -> int:
    print(new_key())
    return 0


def _progress(step: ColumnRotation) -> None:
    print(
        f"  {step.column}: {step.examined} examined, {step.resealed} re-encrypted",
        file=sys.stderr,
        flush=True,
    )


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{kid} {count}" for kid, count in sorted(counts.items())) or "none stored"
