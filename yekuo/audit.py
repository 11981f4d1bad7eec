"""The audit chain from the hub's side: the configuration fingerprint chained at every start, and
`yekuo audit list|verify`.

The hub's configuration is files (mappings, code tables, routes, workflow stages and roster, feasibility
rules), so "who changed the configuration" shows in the chain as a `config.loaded` entry per start: the
SHA-256 of every file, the files that differ from the previous start, and the process that loaded them.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import os
import socket
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from store.audit import AuditEntry, append_entry, last_entry, list_entries, verify_chain
from store.database import create_engine
from yekuo.settings import Settings

CONFIG_FOLDERS = ("mappings", "routes", "workflow", "feasibility")
CONFIG_SUFFIXES = (".yaml", ".yml")
CONFIG_LOADED = "config.loaded"


def config_fingerprint(config_dir: Path) -> dict[str, str]:
    """SHA-256 (hex) of every configuration file under config_dir, by its path relative to it."""
    files: dict[str, str] = {}
    for folder in CONFIG_FOLDERS:
        for path in sorted((config_dir / folder).rglob("*")):
            if path.is_file() and path.suffix in CONFIG_SUFFIXES:
                files[path.relative_to(config_dir).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def process_actor() -> str:
    """Who a hub process acts as: OS user @ host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def record_config_loaded(engine: Engine, config_dir: Path, *, actor: str | None = None) -> AuditEntry:
    """Chain the fingerprint of the configuration a hub starts with, naming the files changed since the
    previous start (all of them on the first)."""
    files = config_fingerprint(config_dir)
    with engine.begin() as conn:
        previous = last_entry(conn, CONFIG_LOADED)
        before = previous.detail.get("files", {}) if previous is not None else {}
        changed = sorted(path for path in files.keys() | before.keys() if files.get(path) != before.get(path))
        return append_entry(
            conn,
            actor=actor or process_actor(),
            action=CONFIG_LOADED,
            subject=str(config_dir)[-191:],
            detail={"files": files, "changed": changed},
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out `yekuo audit list|verify`; verify exits 1 on a broken chain."""
    engine = create_engine(args.db_url or settings.db_url)
    try:
        with engine.connect() as conn:
            if args.audit_command == "verify":
                verdict = verify_chain(conn)
                if verdict.broken is not None:
                    print(
                        f"audit chain BROKEN at entry {verdict.broken.entry_id}: {verdict.broken.reason} "
                        f"({verdict.entries} entries before it verified)",
                        file=sys.stderr,
                    )
                    return 1
                print(f"audit chain intact: {verdict.entries} entries")
                return 0
            for entry in list_entries(conn, after=args.after, limit=args.limit, action=args.action):
                print(_line(entry))
    except sa.exc.SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        print(f"yekuo audit {args.audit_command}: database error on {where}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `yekuo audit` subcommands."""
    audit = commands.add_parser("audit", help="the hash-chained audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="check the chain; exit 1 naming the first broken entry")
    verify.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    listing = audit_commands.add_parser("list", help="entries, oldest first")
    listing.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    listing.add_argument("--action", help="only this action, e.g. pii.read or parked.replay")
    listing.add_argument("--after", type=int, default=0, help="start after this entry id")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
    audit.set_defaults(func=lambda args: run(args, Settings()))


def _line(entry: AuditEntry) -> str:
    detail = entry.detail
    if entry.action == CONFIG_LOADED:
        # The full fingerprint is long; the list shows what changed.
        changed = detail.get("changed", [])
        shown = changed if len(changed) <= 10 else len(changed)
        detail = {"files": len(detail.get("files", {})), "changed": shown}
    return (
        f"{entry.id:>6}  {entry.at:%Y-%m-%d %H:%M:%S}Z  {entry.actor}  {entry.action}  {entry.subject}  "
        f"{json.dumps(detail, ensure_ascii=False, sort_keys=True)}"
    )
