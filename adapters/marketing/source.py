"""Polls the marketing system for changed applications and the customers they reference, as raw records."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import zeep

from adapters.marketing.client import MarketingClient, Watermark
from adapters.records import RawRecord, SourceBatch
from yekuo.errors import ConfigError, MalformedInputError

SYSTEM = "marketing"

logger = logging.getLogger(__name__)


def _position(application: dict[str, Any], index: int) -> Watermark:
    changed_at, key = application.get("UPDATE_TIME"), application.get("APP_NO")
    if not isinstance(changed_at, str) or not isinstance(key, str):
        raise MalformedInputError(
            f"marketing application #{index} of the page lacks UPDATE_TIME or APP_NO: "
            f"UPDATE_TIME={changed_at!r}, APP_NO={key!r}"
        )
    try:
        return Watermark(changed_at=changed_at, key=key)
    except MalformedInputError as exc:
        raise MalformedInputError(f"marketing application {key} (#{index} of the page): {exc}") from exc


class MarketingSource:
    """The marketing system as a polling source: one page of changed applications per poll.

    The checkpoint is a Watermark in its dict form ({"changed_at": ..., "key": ...}); None or an empty
    mapping reads from the beginning. The source stores nothing: the caller commits the records and the
    returned checkpoint in one transaction.
    Each page yields the customers its applications reference first (each once, fetched in batches), then
    the applications, so a customer is known before an application that points at it. A customer's position
    is that of the first application in the page that references it.
    """

    name = SYSTEM

    def __init__(
        self,
        wsdl_url: str,
        *,
        page_size: int = 200,
        timeout_s: float = 10.0,
        transport: zeep.Transport | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        if page_size < 1:
            raise ConfigError(f"marketing page size must be at least 1, got {page_size}")
        self.page_size = page_size
        self.client = MarketingClient(
            wsdl_url, transport=transport, timeout_s=timeout_s, endpoint_url=endpoint_url
        )

    def close(self) -> None:
        """Release the SOAP client's connections."""
        self.client.close()

    def poll(self, checkpoint: Mapping[str, Any] | None) -> SourceBatch:
        """The page of applications changed after the checkpoint, with their customers."""
        watermark = Watermark.from_dict(checkpoint) if checkpoint else None
        page = self.client.list_changed_applications(watermark, self.page_size)
        positions = [_position(application, index) for index, application in enumerate(page.applications)]
        first_reference: dict[str, Watermark] = {}
        for application, position in zip(page.applications, positions, strict=True):
            cons_no = application.get("CONS_NO")
            if cons_no:
                first_reference.setdefault(cons_no, position)
        customers = self.client.get_customers(list(first_reference))
        missing = set(first_reference) - {customer.get("CONS_NO") for customer in customers}
        if missing:
            logger.warning(
                "marketing system does not know customers %s referenced by changed applications",
                sorted(missing),
            )
        records = [
            RawRecord(
                system=SYSTEM,
                record_type="customer",
                key=customer["CONS_NO"],
                payload=customer,
                position=first_reference[customer["CONS_NO"]].to_dict(),
            )
            for customer in customers
            if customer.get("CONS_NO") in first_reference
        ]
        records.extend(
            RawRecord(
                system=SYSTEM,
                record_type="application",
                key=position.key,
                payload=application,
                position=position.to_dict(),
            )
            for application, position in zip(page.applications, positions, strict=True)
        )
        return SourceBatch(
            records=records,
            checkpoint=positions[-1].to_dict() if positions else dict(checkpoint or {}),
            has_more=page.has_more,
        )
