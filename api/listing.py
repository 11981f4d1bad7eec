"""The conventions every list endpoint shares: `limit`, an opaque `cursor`, a whitelisted `sort`, and one
response shape, `{"items": [...], "limit": n, "next_cursor": "..." | null}`.

A cursor is the base64url JSON of the listing's name and the key of the last item sent, so a cursor of
one listing is refused by another (400 `invalid-cursor`). `sort` names a field, `-field` for descending;
each listing accepts only the orders it can page through by key, and anything else is 422 `invalid-sort`.

Each listing documents its page as a named subclass, `class ApplicationPage(Page[ApplicationSummary])`:
pydantic would name `Page[X]` itself `Page_X_` in /openapi.json, which client generators turn into awkward
type names.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic_core import to_json

from api.problems import problem, problem_responses

Item = TypeVar("Item")

LIST_PROBLEMS = problem_responses("invalid-cursor", "invalid-sort", "invalid-parameter")
CursorParam = Annotated[
    str | None,
    Query(max_length=2048, description="next_cursor of the previous page; leave out for the first page"),
]


class Page(BaseModel, Generic[Item]):
    """One page of a listing."""

    items: list[Item]
    limit: int = Field(description="the page size asked for", examples=[50])
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page", examples=[None]
    )


def limit_param(default: int, maximum: int) -> Any:
    """The `limit` query parameter: page size between 1 and maximum."""
    return Query(ge=1, le=maximum, description=f"page size, 1 to {maximum} (default {default})")


def sort_param(allowed: Sequence[str]) -> Any:
    """The `sort` query parameter with the orders a listing accepts, its default first."""
    return Query(
        description=f"order of the items, one of {', '.join(allowed)} (default {allowed[0]})",
        max_length=64,
    )


def check_sort(sort: str | None, allowed: Sequence[str]) -> str:
    """The order asked for, if the listing accepts it; 422 invalid-sort naming the accepted ones if not."""
    if sort is None:
        return allowed[0]
    if sort not in allowed:
        raise problem(
            "invalid-sort",
            f"sort {sort[:64]!r} is not accepted here; accepted: {', '.join(allowed)}",
            accepted=list(allowed),
        )
    return sort


def encode_cursor(listing: str, key: Sequence[Any]) -> str:
    """An opaque cursor for the position after the item with this key."""
    raw = json.dumps([listing, *key], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(listing: str, cursor: str, arity: int) -> list[Any]:
    """The key a cursor of this listing stands for; 400 invalid-cursor when this listing did not make it."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        decoded = None
    if not isinstance(decoded, list) or len(decoded) != arity + 1 or decoded[0] != listing:
        raise problem("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return decoded[1:]


def page(items: list[Any], limit: int, next_cursor: str | None) -> dict[str, Any]:
    """The response body of one page."""
    return {"items": items, "limit": limit, "next_cursor": next_cursor}


class PageResponse(JSONResponse):
    """A page encoded by pydantic's serializer in one pass, as FastAPI encodes a route declared `-> dict[str,
    Any]` (times with "Z", decimals as strings), without first validating every value of the page against
    `Any`, which took longer than reading a page of 50 cases."""

    def render(self, content: Any) -> bytes:
        return to_json(content, by_alias=True)


def page_response(items: list[Any], limit: int, next_cursor: str | None) -> PageResponse:
    """One page as a response, for a listing whose items are plain dicts of many values."""
    return PageResponse(page(items, limit, next_cursor))
