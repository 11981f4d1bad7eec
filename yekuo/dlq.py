"""`yekuo dlq`: list, show, replay and discard parked messages from a terminal (the operator service).

Personal data is masked in everything printed (pipeline.masking). `yekuo dlq show --unmask` prints one message
unmasked and records that read in the audit log under the operator's name (--operator, default the OS user).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ground.errors import YekuoError
from ground.settings import Settings
from pipeline.operations import (
    ActionResult,
    OperationError,
    Operations,
    ParkedDetail,
    ParkedPage,
    PiiReader,
    origin,
)
from store.database import create_engine

REASON_WIDTH = 60
SHOW_VIEW = "yekuo dlq show --unmask"  # the view an unmasked read is audited under


def default_operator() -> str | None:
    """The OS user running the command, or None when the system cannot tell."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Carry out one `yekuo dlq` subcommand; return the exit code (1 when it was refused or failed)."""
    overrides: dict[str, Any] = {}
    if args.bus_url:
        overrides["bus_url"] = args.bus_url
    if args.config_dir:
        overrides["config_dir"] = Path(args.config_dir)
    settings = settings.model_copy(update=overrides)
    engine = create_engine(args.db_url or settings.db_url)
    operations = Operations(engine, settings=settings)
    try:
        print(_execute(operations, args))
    except YekuoError as exc:
        print(f"yekuo dlq {args.dlq_command}: {exc}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as exc:
        where = engine.url.render_as_string(hide_password=True)
        print(f"yekuo dlq {args.dlq_command}: database error on {where}: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def _execute(operations: Operations, args: argparse.Namespace) -> str:
    if args.dlq_command == "list":
        status = None if args.status == "all" else args.status
        page = operations.browse(kind=args.kind, status=status, after=args.after, limit=args.limit)
        return render_list(page, args)
    if args.dlq_command == "show" and not args.unmask:
        return render_detail(operations.inspect(args.id))
    operator = args.operator or default_operator()
    if not operator:
        raise OperationError("cannot tell who is acting: give --operator NAME")
    if args.dlq_command == "show":
        return render_detail(operations.inspect(args.id, reader=PiiReader(operator, SHOW_VIEW)))
    if args.dlq_command == "replay":
        return render_result(operations.replay(args.id, operator=operator))
    return render_result(operations.discard(args.id, operator=operator))


def render_list(page: ParkedPage, args: argparse.Namespace) -> str:
    """A table of one page of parked messages, with how to get the next page."""
    scope = f"kind {args.kind or 'any'}, status {args.status}"
    if not page.items:
        return f"no parked messages ({scope})"
    rows = [("ID", "KIND", "STATUS", "CREATED (UTC)", "CODE", "ORIGIN", "REASON")]
    rows += [
        (
            str(message.id),
            message.kind,
            message.status,
            message.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            message.reason_code,
            origin(message),
            _shorten(message.reason, REASON_WIDTH),
        )
        for message in page.items
    ]
    lines = _table(rows)
    lines.append(f"{len(page.items)} of {page.total} shown ({scope})")
    if page.next_after is not None:
        lines.append(f"next page: yekuo dlq list --after {page.next_after} (same filters)")
    return "\n".join(lines)


def render_detail(detail: ParkedDetail) -> str:
    """Everything known about one parked message, its payload and the actions taken on it, as shown."""
    message, actions = detail.message, detail.actions
    fields = [
        ("kind", message.kind),
        ("status", message.status),
        ("created at", message.created_at.isoformat()),
        ("reason code", message.reason_code),
        ("reason", message.reason),
        ("origin", origin(message)),
    ]
    if message.source_system is not None:
        fields.append(("record", f"{message.source_system} / {message.record_type} / {message.record_key}"))
        fields.append(("position", _json(message.position)))
    elif message.record_key is not None:
        fields.append(("message id", message.record_key))
    if detail.hidden:
        fields.append(("masked", f"{', '.join(detail.hidden)} (personal data; --unmask shows it, audited)"))
    lines = [f"parked message #{message.id}"]
    lines += [f"  {name:<12} {value}" for name, value in fields]
    payload = message.payload
    if message.kind == "dead" and isinstance(payload, Mapping):
        lines += _dead_letter_lines(payload)
    else:
        lines += ["payload:", _indent(_json(payload, pretty=True))]
    lines.append("actions:" if actions else "actions: none")
    lines += [
        f"  {action.at.strftime('%Y-%m-%d %H:%M:%S')}  {action.operator}  {action.action}: {action.detail}"
        for action in actions
    ]
    return "\n".join(lines)


def render_result(result: ActionResult) -> str:
    """One line saying what an action did and who did it."""
    past = {"replay": "replayed", "discard": "discarded"}[result.action]
    return f"{past} #{result.message.id} (operator {result.operator}): {result.detail}"


def _dead_letter_lines(payload: Mapping[str, Any]) -> list[str]:
    lines = [
        "message:",
        f"  {'queue':<14} {payload.get('queue')}",
        f"  {'published to':<14} exchange {payload.get('exchange')!r}, key {payload.get('routing_key')!r}",
        f"  {'message id':<14} {payload.get('message_id')}",
        f"  {'type':<14} {payload.get('type')}",
        f"  {'correlation id':<14} {payload.get('correlation_id')}",
        f"  {'content type':<14} {payload.get('content_type')}",
        f"  {'headers':<14} {_json(payload.get('headers') or {})}",
    ]
    failures = payload.get("failures") or []
    lines.append("failures:" if failures else "failures: none recorded")
    for failure in failures if isinstance(failures, list) else []:
        if isinstance(failure, Mapping):
            lines.append(f"  #{failure.get('attempt')} at {failure.get('at')}: {failure.get('error')}")
    lines += ["body:", _indent(str(payload.get("body", "")))]
    return lines


def _json(value: Any, *, pretty: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2 if pretty else None, default=str)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _shorten(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _width(text: str) -> int:
    """Terminal columns of the text: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(_width(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]
