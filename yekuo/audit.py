"""The audit chain from the hub's side: the configuration fingerprint chained at every start, anchoring
(by hand and on a schedule), and `yekuo audit list|verify|anchor|new-key`.

The hub's configuration is files (mappings, code tables, routes, workflow stages and roster, feasibility
rules), so "who changed the configuration" shows in the chain as a `config.loaded` entry per start: the
SHA-256 of every file, the files that differ from the previous start, and the process that loaded them.

An anchor is only written for a chain that verifies against the previous anchor, so a tampered chain is
never blessed by a later anchor.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ground import clock
from ground.errors import YekuoError
from ground.settings import AuditSettings, Settings
from store.anchors import Anchor, append_anchor, latest_anchor
from store.audit import (
    AuditEntry,
    ChainVerdict,
    append_entry,
    bind_chain_key,
    chain_key_from_settings,
    chain_key_of,
    last_entry,
    list_entries,
    new_chain_key,
    verify_chain,
)
from store.database import create_engine

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ChainCheck:
    """The chain verified against the latest anchor of the anchor file (None: the file holds none)."""

    verdict: ChainVerdict
    anchor: Anchor | None


def check_chain(engine: Engine, audit: AuditSettings, anchor_path: Path | None = None) -> ChainCheck:
    """Verify the whole chain with the engine's key and against the latest anchor."""
    anchor = latest_anchor(anchor_path or audit.anchor_path)
    with engine.connect() as conn:
        verdict = verify_chain(conn, unkeyed_through=audit.unkeyed_through, anchor=anchor)
    return ChainCheck(verdict, anchor)


def anchor_chain(
    engine: Engine, audit: AuditSettings, anchor_path: Path | None = None
) -> tuple[ChainCheck, Anchor | None]:
    """Verify the chain and, if it holds, append its head to the anchor file; no anchor for a broken one."""
    path = anchor_path or audit.anchor_path
    check = check_chain(engine, audit, path)
    if not check.verdict.ok:
        return check, None
    anchor = Anchor(check.verdict.entries, check.verdict.last_hash, clock.now().replace(microsecond=0))
    append_anchor(path, anchor)
    return check, anchor


class AnchorLoop:
    """A hub loop step that anchors the chain at its first call and then every anchor_interval_s.

    A broken chain or an unwritable anchor file is logged as an error and tried again an interval later;
    the hub's other loops carry on.
    """

    def __init__(
        self, engine: Engine, audit: AuditSettings, *, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self._engine = engine
        self._audit = audit
        self._timer = timer
        self._due: float | None = None

    def step(self) -> bool:
        """Anchor if it is time; never busy, so the hub idles between calls."""
        now = self._timer()
        if self._due is not None and now < self._due:
            return False
        self._due = now + self._audit.anchor_interval_s
        try:
            check, anchor = anchor_chain(self._engine, self._audit)
        except (YekuoError, OSError, sa.exc.SQLAlchemyError) as exc:
            log.error("audit chain not anchored to %s: %s", self._audit.anchor_path, exc)
            return False
        broken = check.verdict.broken
        if broken is not None:
            log.error("audit chain BROKEN at entry %d, not anchored: %s", broken.entry_id, broken.reason)
        elif anchor is not None:
            log.info("audit chain anchored to %s: %s", self._audit.anchor_path, anchor.describe())
        return False


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one `yekuo audit` subcommand; verify and anchor exit 1 on a broken chain."""
    if args.audit_command == "new-key":
        print(new_chain_key())
        return 0
    engine = create_engine(args.db_url or settings.db_url)
    command = f"yekuo audit {args.audit_command}"
    anchor_path = Path(args.anchor_path) if getattr(args, "anchor_path", None) else settings.audit.anchor_path
    try:
        bind_chain_key(engine, chain_key_from_settings(settings.audit))
        if args.audit_command == "verify":
            return _report(check_chain(engine, settings.audit, anchor_path), engine, anchor_path)
        if args.audit_command == "anchor":
            check, anchor = anchor_chain(engine, settings.audit, anchor_path)
            if anchor is None:
                _report(check, engine, anchor_path)
                print(f"{command}: the chain does not verify; no anchor written", file=sys.stderr)
                return 1
            print(f"anchored {anchor.describe()} in {anchor_path}")
            return 0
        with engine.connect() as conn:
            for entry in list_entries(conn, after=args.after, limit=args.limit, action=args.action):
                print(_line(entry))
    except sa.exc.SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        print(f"{command}: database error on {where}: {exc}", file=sys.stderr)
        return 1
    except YekuoError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{command}: cannot write the anchor file {anchor_path}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `yekuo audit` subcommands."""
    audit = commands.add_parser("audit", help="the keyed, hash-chained audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check the chain and its latest anchor; exit 1 naming the first break"
    )
    anchor = audit_commands.add_parser(
        "anchor", help="verify, then append the chain's head to the anchor file (YEKUO_AUDIT__ANCHOR_PATH)"
    )
    for checking in (verify, anchor):
        checking.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
        checking.add_argument("--anchor-path", help="anchor file (default: YEKUO_AUDIT__ANCHOR_PATH)")
    listing = audit_commands.add_parser("list", help="entries, oldest first")
    listing.add_argument("--db-url", help="hub database (default: YEKUO_DB_URL)")
    listing.add_argument("--action", help="only this action, e.g. pii.read or parked.replay")
    listing.add_argument("--after", type=int, default=0, help="start after this entry id")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default: %(default)s)")
    audit_commands.add_parser("new-key", help="print a fresh random key for YEKUO_AUDIT__CHAIN_KEY")
    audit.set_defaults(func=lambda args: run(args, Settings()))


def _report(check: ChainCheck, engine: Engine, anchor_path: Path) -> int:
    verdict = check.verdict
    if verdict.broken is not None:
        print(
            f"audit chain BROKEN at entry {verdict.broken.entry_id}: {verdict.broken.reason} "
            f"({verdict.entries} entries before it verified)",
            file=sys.stderr,
        )
        if chain_key_of(engine.dialect).development:
            print(
                "note: the chain was checked with the public development key (YEKUO_AUDIT__CHAIN_KEY is not "
                "set); a chain the hub keyed with its real key fails every entry under it",
                file=sys.stderr,
            )
        return 1
    unkeyed = (
        f", the first {verdict.unkeyed} written before keying (plain SHA-256)" if verdict.unkeyed else ""
    )
    print(f"audit chain intact: {verdict.entries} entries{unkeyed}")
    if check.anchor is None:
        print(
            f"warning: no anchor in {anchor_path}, so entries deleted from the end with the sequence counter "
            "rolled back would go unnoticed; run `yekuo audit anchor`",
            file=sys.stderr,
        )
    else:
        print(f"matches the latest anchor: {check.anchor.describe()}")
    return 0


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
