"""The protocol of the marketing system's push: its WSDL, the notifications it sends and the answers.

The marketing system pushes ApplicationChanged notifications carrying the whole application record (and
its customer) over SOAP 1.1. This module reads such a notification into the marketing system's records
and writes the answers; where the records are kept and how the endpoint is served is the hub's business.

Hostile input costs bounded time and memory: a body is read in chunks and at most max_bytes are kept
(a bigger body is read on to drain_bytes and thrown away, so the sender still gets its fault, or the
connection is closed); the XML parser loads no DTD, expands no entity, opens no network or file and
refuses deep nesting. Every refusal is a MalformedInputError, answered as a soap:Client fault.

A notification is taken whole or refused whole: it carries one version of one application (and its
customer). The fields the hub's mappings require (mappings/marketing/application.yaml and customer.yaml)
are required by the served WSDL too (push_requirements.py), and each record is run through its mapping
when it is read: a record the mapping would park (a missing field, an unknown code) is refused at once,
with the fields named in the faultstring.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.marketing.legacy import APPLICATION_FIELDS, CUSTOMER_FIELDS, record_from_xml
from adapters.marketing.push_requirements import missing_fields, require_in_schema, requirement_of
from ground.errors import InvalidRecordError, MalformedInputError
from ground.settings import PROJECT_ROOT
from ground.soap import WsdlContract, build_envelope, parse_envelope
from mappings.codes import load_code_tables
from mappings.engine import Mapping
from mappings.loader import CODES_FOLDER, load_mapping

NAMESPACE = "urn:yekuo:hub:marketing-push:v1"
WSDL_PATH = Path(__file__).with_name("push.wsdl")
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_DRAIN_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 16

APPLICATION_MAPPING = "marketing/application"
CUSTOMER_MAPPING = "marketing/customer"


def _q(local: str) -> str:
    return f"{{{NAMESPACE}}}{local}"


@dataclass(frozen=True)
class PushMappings:
    """The mappings a pushed application and customer go through on their way to canonical records."""

    application: Mapping
    customer: Mapping

    @classmethod
    def of(cls, mappings: AbcMapping[str, Mapping]) -> PushMappings:
        """The two out of the hub's loaded mappings (by name)."""
        return cls(mappings[APPLICATION_MAPPING], mappings[CUSTOMER_MAPPING])

    @classmethod
    def load(cls, config_dir: Path = PROJECT_ROOT) -> PushMappings:
        """Load the two from config_dir/mappings; raises ConfigError (file:line) if either is wrong."""
        mappings_dir = config_dir / "mappings"
        codes = load_code_tables(mappings_dir / CODES_FOLDER, root=config_dir)
        return cls(
            *(
                load_mapping(mappings_dir / f"{name}.yaml", codes, mappings_dir, root=config_dir)
                for name in (APPLICATION_MAPPING, CUSTOMER_MAPPING)
            )
        )


class PushContract(WsdlContract):
    """The push WSDL, its required elements taken from the mappings; validates pushed notifications."""

    def __init__(self, mappings: PushMappings, wsdl_path: Path = WSDL_PATH) -> None:
        self.application = requirement_of(mappings.application)
        self.customer = requirement_of(mappings.customer)
        super().__init__(wsdl_path, prepare=self._require)

    def _require(self, schema: etree._Element) -> None:
        require_in_schema(schema, "Application", self.application)
        require_in_schema(schema, "Customer", self.customer)

    def missing(self, request: etree._Element) -> list[str]:
        """The required fields an ApplicationChanged lacks, as application/... and customer/... paths."""
        found: list[str] = []
        for part, requirement in (("application", self.application), ("customer", self.customer)):
            record = request.find(_q(part))
            if record is not None:
                found.extend(f"{part}/{path}" for path in missing_fields(record, requirement, NAMESPACE))
        return found


@dataclass(frozen=True)
class Notification:
    """One ApplicationChanged: the application record, its customer's if sent, and the sender's id of it."""

    application: dict[str, Any]
    customer: dict[str, Any] | None
    notification_id: str | None


class PushReader:
    """Reads pushed notifications against the contract and the mappings the hub maps their records with."""

    def __init__(self, mappings: PushMappings, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.mappings = mappings
        self.contract = PushContract(mappings)
        self.max_bytes = max_bytes

    def read(self, body: bytes) -> Notification:
        """The notification a SOAP request body carries; MalformedInputError if any of it is refused."""
        request = parse_envelope(body, max_bytes=self.max_bytes, max_depth=MAX_DEPTH)
        if request.tag != _q("ApplicationChanged"):
            raise MalformedInputError(f"unknown operation {request.tag}")
        # Named before the schema check, whose message would name only the first gap in a sequence.
        missing = self.contract.missing(request)
        if missing:
            raise MalformedInputError(_lacking(request, missing))
        self.contract.validate(request)
        application = record_from_xml(request.find(_q("application")), APPLICATION_FIELDS, NAMESPACE)
        customer_element = request.find(_q("customer"))
        customer = (
            record_from_xml(customer_element, CUSTOMER_FIELDS, NAMESPACE)
            if customer_element is not None
            else None
        )
        if customer is not None and customer["CONS_NO"] != application["CONS_NO"]:
            raise MalformedInputError(
                f"customer {customer['CONS_NO']} is not the customer {application['CONS_NO']} of "
                f"application {application['APP_NO']}"
            )
        _mapped(self.mappings.application, application, f"application {application['APP_NO']}")
        if customer is not None:
            _mapped(self.mappings.customer, customer, f"customer {customer['CONS_NO']}")
        return Notification(application, customer, request.findtext(_q("notificationId")))


def _lacking(request: etree._Element, missing: list[str]) -> str:
    app_no = (request.findtext(f"{_q('application')}/{_q('APP_NO')}") or "").strip() or "without APP_NO"
    return (
        f"application {app_no} lacks fields the hub requires: {', '.join(missing)}; "
        "nothing was stored, send it again complete"
    )


def _mapped(mapping: Mapping, record: dict[str, Any], what: str) -> None:
    """Run a record through its mapping as the pipeline will; a record it would park is refused now."""
    try:
        mapping.apply(record)
    except InvalidRecordError as exc:
        raise MalformedInputError(f"{what} would not map, nothing was stored: {exc}") from exc


async def read_bounded(
    chunks: AsyncIterable[bytes], declared_length: str, max_bytes: int, drain_bytes: int
) -> bytes:
    """A request body, or MalformedInputError once it passes max_bytes (after draining up to drain_bytes).

    declared_length is the request's Content-Length header ("" without one).
    """
    if declared_length.isdigit() and int(declared_length) > drain_bytes:
        raise MalformedInputError(f"XML body exceeds {max_bytes} bytes ({declared_length} bytes)")
    body = bytearray()
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > drain_bytes:
            break
        if seen <= max_bytes:
            body += chunk
    if seen > max_bytes:
        raise MalformedInputError(f"XML body exceeds {max_bytes} bytes")
    return bytes(body)


def accepted(seq: int, *, duplicate: bool) -> bytes:
    """The SOAP answer to a notification the hub kept under sequence number seq (or had kept already)."""
    answer = etree.Element(_q("ApplicationChangedResponse"), nsmap={"push": NAMESPACE})
    etree.SubElement(answer, _q("accepted")).text = "true"
    etree.SubElement(answer, _q("duplicate")).text = "true" if duplicate else "false"
    etree.SubElement(answer, _q("sequence")).text = str(seq)
    return build_envelope(answer)
