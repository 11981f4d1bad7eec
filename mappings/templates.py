"""Text templates with `{name}` placeholders, shared by mapping templates and route keys."""

from __future__ import annotations

import re
import string

Pieces = tuple[tuple[str, str | None], ...]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_template(text: str) -> Pieces:
    """The literal pieces of a template, each followed by the placeholder name after it (or None).

    `{{` and `}}` are literal braces. Placeholders are names or dotted paths, without format specs.
    Raises ValueError naming what is wrong.
    """
    pieces: list[tuple[str, str | None]] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"bad template {text!r}: {exc}") from None
    for literal, name, spec, conversion in parsed:
        if name is None:
            # `{{` splits the literal text; keep literal runs together.
            if pieces and pieces[-1][1] is None:
                literal = pieces.pop()[0] + literal
            pieces.append((literal, None))
            continue
        if spec or conversion:
            raise ValueError(f"bad template {text!r}: write plain {{name}} placeholders, no formats")
        if not _NAME.match(name):
            raise ValueError(f"bad template {text!r}: '{{{name}}}' is not a field name")
        pieces.append((literal, name))
    return tuple(pieces)


def placeholders(pieces: Pieces) -> list[str]:
    """The placeholder names of a parsed template, in order."""
    return [name for _, name in pieces if name is not None]
