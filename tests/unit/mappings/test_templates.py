"""Template parsing for mapping templates and route keys."""

from __future__ import annotations

import pytest

from mappings.templates import parse_template, placeholders


def test_pieces_and_placeholders() -> None:
    pieces = parse_template("application.changed.{customer_class}/{A.B}{{x}}")
    assert pieces == (("application.changed.", "customer_class"), ("/", "A.B"), ("{x}", None))
    assert placeholders(pieces) == ["customer_class", "A.B"]
    assert parse_template("plain") == (("plain", None),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "bad template"),
        ("a}", "bad template"),
        ("{x!r}", "no formats"),
        ("{x:>3}", "no formats"),
        ("{}", "is not a field name"),
        ("{0}", "is not a field name"),
        ("{a[0]}", "is not a field name"),
        ("{a..b}", "is not a field name"),
    ],
)
def test_bad_templates(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_template(text)
