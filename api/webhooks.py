"""Webhook subscriptions: create, list, read and delete them, and read or replay their deliveries.

A subscription receives every new feed event matching its type filters as a signed POST (see
subscriptions/webhooks.py). Its secret is shown once, in the answer that creates it. Personal data is sent
unmasked only to a subscription created with include_pii by a caller who may read it. Both lists follow the
shared list conventions (api/listing.py); a cursor of one subscription's deliveries is refused by another's.

A subscription belongs to the caller that created it: every route shows and changes only the caller's own
subscriptions, and another caller's answers 404 exactly like an unknown id, so its existence is not
revealed. A caller holding webhooks:all (the admin role) sees and manages everyone's. A URL must be http(s)
and reach only allowed addresses (subscriptions/destinations.py), and a caller holds at most
settings.webhooks.max_per_caller subscriptions.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import AnyHttpUrl, BaseModel, Field, field_validator

from api.context import Context, Database
from api.listing import (
    LIST_PROBLEMS,
    CursorParam,
    Page,
    check_sort,
    decode_cursor,
    encode_cursor,
    limit_param,
    page,
    sort_param,
)
from api.problems import ProblemError, problem, problem_responses
from api.security import CurrentPrincipal, caller_can_read_pii
from ground.errors import DestinationRefusedError, DestinationUnresolvedError
from store.database import Engine, utcnow
from store.webhooks import (
    PENDING,
    SubscriptionLimitError,
    create_subscription,
    delete_subscription,
    get_delivery,
    get_subscription,
    list_deliveries,
    list_subscriptions,
    replay_delivery,
)

MAX_FILTERS = 20
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# Delivery ids are 64-bit signed integers in every database the hub supports.
MAX_DELIVERY_ID = 2**63 - 1
SUBSCRIPTION_SORTS = ("created_at",)  # oldest first, then by id
DELIVERY_SORTS = ("id",)  # deliveries page by id, oldest first
_TYPE_FILTER = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$")
# Granted to administrators: every caller's subscriptions, not only their own.
WEBHOOKS_ALL = "webhooks:all"

SubscriptionId = Annotated[str, Path(max_length=64, description="id of the subscription")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_DELIVERY_ID, description="id of the delivery")]


@dataclass(frozen=True)
class WebhookCaller:
    """Whose subscriptions a request may see and change."""

    owner: str
    sees_all: bool  # an administrator: every owner's subscriptions


async def principal_caller(principal: CurrentPrincipal) -> WebhookCaller:
    """The authenticated caller (a dependency): its own subscriptions, or all of them with webhooks:all."""
    return WebhookCaller(owner=principal.sub, sees_all=principal.can(WEBHOOKS_ALL))


class NewSubscription(BaseModel):
    """What a caller sends to subscribe."""

    url: AnyHttpUrl = Field(description="where events are POSTed (http or https)")
    event_types: list[str] = Field(
        default_factory=list,
        max_length=MAX_FILTERS,
        description="event types, exact or dotted prefix (cn.yekuo.grid, cn.yekuo.grid.*); empty: all",
    )
    description: str | None = Field(default=None, max_length=500)
    include_pii: bool = Field(default=False, description="send personal data unmasked (needs pii:read)")

    @field_validator("event_types")
    @classmethod
    def _filters(cls, value: list[str]) -> list[str]:
        for text in value:
            if len(text) > 191 or not _TYPE_FILTER.match(text):
                raise ValueError(f"{text!r} is not an event type or a dotted prefix of one")
        return sorted(set(value))


class SubscriptionView(BaseModel):
    """A subscription as listed (never with its secret)."""

    id: str = Field(examples=["7c0e5a43-1d2b-4f6e-8a9c-0b1d2e3f4a5b"])
    owner: str = Field(description="the caller that created it", examples=["marketing"])
    url: str = Field(examples=["https://platform.example/hooks/yekuo"])
    event_types: list[str] = Field(examples=[["cn.yekuo.case", "cn.yekuo.application.changed.v1"]])
    include_pii: bool = Field(examples=[False])
    active: bool = Field(examples=[True])
    description: str | None = Field(examples=["case progress for the customer portal"])
    cursor: int = Field(description="the last feed id taken into deliveries", examples=[42])
    created_at: datetime


class DeliveryCounts(BaseModel):
    """A subscription's deliveries by status."""

    pending: int = Field(examples=[1])
    delivered: int = Field(examples=[40])
    parked: int = Field(examples=[0])


class SubscriptionDetail(SubscriptionView):
    """A subscription with its deliveries counted by status."""

    deliveries: DeliveryCounts


class CreatedSubscription(SubscriptionView):
    """The answer to a new subscription: the only time its signing secret is shown."""

    secret: str = Field(description="HMAC-SHA256 key of X-Yekuo-Signature; keep it, it is not shown again")


DeliveryStatus = Literal["pending", "delivered", "parked"]


class DeliveryView(BaseModel):
    """One event queued for one subscription, with the outcome of its last attempt."""

    id: int = Field(examples=[7])
    feed_id: int = Field(description="the event's position in the feed", examples=[42])
    event_id: str = Field(examples=["0b6f8c1e-3c4f-4d8e-9a57-2f1f3b0c9d21"])
    event_type: str = Field(examples=["cn.yekuo.case.stage_changed.v1"])
    status: DeliveryStatus = Field(examples=["delivered"])
    attempts: int = Field(description="attempts since it was queued or last replayed", examples=[2])
    next_attempt_at: datetime | None = Field(description="when a pending delivery is tried next")
    last_status_code: int | None = Field(description="HTTP status of the last attempt", examples=[200])
    last_error: str | None = Field(description="why the last attempt failed", examples=[None])
    created_at: datetime
    delivered_at: datetime | None


class Attempt(BaseModel):
    """One try of a delivery."""

    attempt: int = Field(examples=[1])
    attempted_at: datetime
    status_code: int | None = Field(description="None: no HTTP answer", examples=[503])
    error: str | None = Field(examples=["HTTP 503"])
    duration_ms: int = Field(examples=[84])
    next_attempt_at: datetime | None = Field(description="None: delivered or parked")


class DeliveryDetail(DeliveryView):
    """A delivery with the log of its attempts, oldest first."""

    attempt_log: list[Attempt]


class ReplayAccepted(BaseModel):
    """A delivery queued again from its first try."""

    id: int = Field(examples=[7])
    status: Literal["pending"] = Field(examples=["pending"])


def subscriptions_cursor(created_at: datetime, subscription_id: str) -> str:
    """An opaque cursor for the position after a subscription."""
    return encode_cursor("webhooks", [created_at.isoformat(), subscription_id])


def subscriptions_position(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) a subscription cursor stands for; 400 invalid-cursor if not one."""
    created_at, subscription_id = decode_cursor("webhooks", cursor, 2)
    try:
        moment = datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None or not isinstance(subscription_id, str):
        raise problem("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return moment, subscription_id


def deliveries_listing(subscription_id: str) -> str:
    """The listing name of one subscription's deliveries, so its cursors fit no other subscription."""
    return f"webhooks/{subscription_id}/deliveries"


def deliveries_position(subscription_id: str, cursor: str) -> int:
    """The delivery id a deliveries cursor stands for; 400 invalid-cursor if not one of this listing."""
    (delivery_id,) = decode_cursor(deliveries_listing(subscription_id), cursor, 1)
    if not isinstance(delivery_id, int) or isinstance(delivery_id, bool) or delivery_id < 0:
        raise problem("invalid-cursor", f"cursor {cursor[:80]!r} is not a cursor of this listing")
    return delivery_id


class SubscriptionPage(Page[SubscriptionView]):
    """One page of webhook subscriptions."""


class DeliveryPage(Page[DeliveryView]):
    """One page of a subscription's deliveries."""


router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
PiiAllowed = Annotated[bool, Depends(caller_can_read_pii)]
Caller = Annotated[WebhookCaller, Depends(principal_caller)]


def owner_filter(who: WebhookCaller) -> str | None:
    """The owner whose subscriptions the caller reaches; None for every owner's."""
    return None if who.sees_all else who.owner


def known(engine: Engine, subscription_id: str, who: WebhookCaller) -> dict[str, Any]:
    """The subscription if the caller may see it; 404 webhook-not-found if not."""
    with engine.connect() as conn:
        found = get_subscription(conn, subscription_id, owner=owner_filter(who))
    if found is None:
        raise webhook_not_found(subscription_id)
    return found


def webhook_not_found(subscription_id: str) -> ProblemError:
    # The same answer for an unknown id and for another caller's: neither says whether it exists.
    return problem("webhook-not-found", f"webhook subscription {subscription_id[:64]} is not known")


def delivery_not_found(subscription_id: str, delivery_id: int) -> ProblemError:
    return problem(
        "delivery-not-found", f"delivery {delivery_id} of webhook {subscription_id[:64]} is not known"
    )


@router.post(
    "",
    status_code=201,
    response_model=CreatedSubscription,
    responses=problem_responses("forbidden", "webhook-destination-refused", "webhook-limit-reached"),
    summary="Subscribe a URL to new events; the answer holds the signing secret",
)
def create(body: NewSubscription, pii: PiiAllowed, who: Caller, context: Context) -> dict[str, Any]:
    limits = context.webhooks
    if body.include_pii and not pii:
        raise problem("forbidden", "include_pii needs the pii:read permission")
    url = str(body.url)
    try:
        context.destinations.vet(url)
    except (DestinationRefusedError, DestinationUnresolvedError) as exc:
        raise problem("webhook-destination-refused", f"{url[:200]}: {exc}") from exc
    secret = "whsec_" + secrets.token_urlsafe(32)
    try:
        with context.engine.begin() as conn:
            created = create_subscription(
                conn,
                owner=who.owner,
                url=url,
                event_types=body.event_types,
                secret=secret,
                include_pii=body.include_pii,
                description=body.description,
                now=utcnow(),
                max_per_owner=limits.max_per_caller,
            )
    except SubscriptionLimitError as exc:
        raise problem(
            "webhook-limit-reached",
            f"{exc.owner} already holds {exc.held} webhook subscriptions, the most a caller may hold "
            f"(settings.webhooks.max_per_caller = {limits.max_per_caller}); delete one first",
            limit=limits.max_per_caller,
        ) from exc
    return {**created, "secret": secret}


@router.get(
    "",
    response_model=SubscriptionPage,
    responses=LIST_PROBLEMS,
    summary="The caller's webhook subscriptions (an admin's: everyone's), oldest first",
)
def list_all(
    who: Caller,
    engine: Database,
    limit: Annotated[int, limit_param(DEFAULT_LIMIT, MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    sort: Annotated[str | None, sort_param(SUBSCRIPTION_SORTS)] = None,
) -> dict[str, Any]:
    check_sort(sort, SUBSCRIPTION_SORTS)
    after = subscriptions_position(cursor) if cursor else None
    with engine.connect() as conn:
        # One more than asked tells whether another page follows.
        found = list_subscriptions(conn, owner=owner_filter(who), after=after, limit=limit + 1)
    items = found[:limit]
    last = items[-1] if items else None
    next_cursor = (
        subscriptions_cursor(last["created_at"], last["id"]) if len(found) > limit and last else None
    )
    return page(items, limit, next_cursor)


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionDetail,
    responses=problem_responses("webhook-not-found"),
    summary="One subscription with its deliveries counted by status",
)
def read(subscription_id: SubscriptionId, who: Caller, engine: Database) -> dict[str, Any]:
    return known(engine, subscription_id, who)


@router.delete(
    "/{subscription_id}",
    status_code=204,
    response_class=Response,
    responses=problem_responses("webhook-not-found"),
    summary="Delete a subscription and its delivery log",
)
def delete(subscription_id: SubscriptionId, who: Caller, engine: Database) -> Response:
    with engine.begin() as conn:
        if not delete_subscription(conn, subscription_id, owner=owner_filter(who)):
            raise webhook_not_found(subscription_id)
    return Response(status_code=204)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=DeliveryPage,
    responses={**LIST_PROBLEMS, **problem_responses("webhook-not-found")},
    summary="A subscription's deliveries, oldest first",
)
def deliveries(
    subscription_id: SubscriptionId,
    who: Caller,
    engine: Database,
    status: Annotated[DeliveryStatus | None, Query(description="only this status")] = None,
    limit: Annotated[int, limit_param(DEFAULT_LIMIT, MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: CursorParam = None,
    sort: Annotated[str | None, sort_param(DELIVERY_SORTS)] = None,
) -> dict[str, Any]:
    check_sort(sort, DELIVERY_SORTS)
    after = deliveries_position(subscription_id, cursor) if cursor else 0
    known(engine, subscription_id, who)
    with engine.connect() as conn:
        # One more than asked tells whether another page follows.
        found = list_deliveries(conn, subscription_id, status=status, after=after, limit=limit + 1)
    items = found[:limit]
    more = len(found) > limit
    next_cursor = encode_cursor(deliveries_listing(subscription_id), [items[-1]["id"]]) if more else None
    return page(items, limit, next_cursor)


@router.get(
    "/{subscription_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    responses=problem_responses("webhook-not-found", "delivery-not-found"),
    summary="One delivery with the log of its attempts",
)
def delivery(
    subscription_id: SubscriptionId, delivery_id: DeliveryId, who: Caller, engine: Database
) -> dict[str, Any]:
    known(engine, subscription_id, who)
    with engine.connect() as conn:
        found = get_delivery(conn, subscription_id, delivery_id)
    if found is None:
        raise delivery_not_found(subscription_id, delivery_id)
    return found


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/replay",
    status_code=202,
    response_model=ReplayAccepted,
    responses=problem_responses("webhook-not-found", "delivery-not-found", "delivery-pending"),
    summary="Send a parked (or delivered) delivery again, from its first try",
)
def replay(
    subscription_id: SubscriptionId, delivery_id: DeliveryId, who: Caller, engine: Database
) -> dict[str, Any]:
    known(engine, subscription_id, who)
    with engine.begin() as conn:
        if get_delivery(conn, subscription_id, delivery_id) is None:
            raise delivery_not_found(subscription_id, delivery_id)
        if not replay_delivery(conn, subscription_id, delivery_id):
            raise problem("delivery-pending", f"delivery {delivery_id} is still pending; it needs no replay")
    return {"id": delivery_id, "status": PENDING}
