"""Tests of the hardened XML parser and the SOAP 1.1 envelope and fault helpers."""

from __future__ import annotations

import pytest
from lxml import etree

from ground.errors import MalformedInputError
from ground.soap import (
    SOAP_ENV_NS,
    FaultCode,
    body_element,
    build_envelope,
    build_fault,
    fault_code,
    parse_envelope,
    parse_xml,
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<foo>&xxe;</foo>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE foo SYSTEM "http://127.0.0.1:9/evil.dtd">
<foo/>
"""


def _nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


def _envelope(body: str) -> bytes:
    return f'<soap:Envelope xmlns:soap="{SOAP_ENV_NS}">{body}</soap:Envelope>'.encode()


def test_parses_a_plain_document() -> None:
    root = parse_xml(b"<?xml version='1.0' encoding='utf-8'?><a><b>\xe5\x8d\x97\xe9\x98\xb3</b></a>")
    assert root.tag == "a"
    assert root.findtext("b") == "南阳"


@pytest.mark.parametrize(
    "document", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD], ids=["billion-laughs", "xxe", "external-dtd"]
)
def test_rejects_dtds_and_entity_declarations(document: bytes) -> None:
    with pytest.raises(MalformedInputError, match=r"^XML document declares a DTD/entities$"):
        parse_xml(document)


def test_external_entity_is_never_resolved_into_the_error() -> None:
    with pytest.raises(MalformedInputError) as caught:
        parse_xml(EXTERNAL_ENTITY)
    assert "root:" not in str(caught.value)


def test_rejects_an_oversized_body() -> None:
    document = b"<a>" + b"x" * 200 + b"</a>"
    with pytest.raises(MalformedInputError, match=r"^XML body exceeds 100 bytes \(207 bytes\)$"):
        parse_xml(document, max_bytes=100)


def test_accepts_a_body_of_exactly_the_limit() -> None:
    document = b"<a>" + b"x" * 93 + b"</a>"
    assert parse_xml(document, max_bytes=100).text == "x" * 93


def test_rejects_nesting_deeper_than_the_limit() -> None:
    with pytest.raises(MalformedInputError, match=r"^XML nesting deeper than 5$"):
        parse_xml(_nested(6), max_depth=5)


def test_accepts_nesting_of_exactly_the_limit() -> None:
    assert parse_xml(_nested(5), max_depth=5).tag == "a"


def test_rejects_nesting_beyond_what_libxml2_parses_with_the_same_message() -> None:
    with pytest.raises(MalformedInputError, match=r"^XML nesting deeper than 32$"):
        parse_xml(_nested(300))


def test_rejects_malformed_xml_naming_the_line() -> None:
    with pytest.raises(
        MalformedInputError, match=r"^malformed XML at line 3: Opening and ending tag mismatch"
    ):
        parse_xml(b"<a>\n<b>\n</a>")


@pytest.mark.parametrize("document", [b"", b"not xml at all", b"<a>&undefined;</a>"])
def test_rejects_documents_that_are_not_xml(document: bytes) -> None:
    with pytest.raises(MalformedInputError, match=r"^malformed XML at line 1: "):
        parse_xml(document)


def test_body_element_is_the_first_element_of_the_body() -> None:
    document = _envelope("<soap:Header/><soap:Body><!-- note --><op xmlns='urn:x'><v>1</v></op></soap:Body>")
    assert parse_envelope(document).tag == "{urn:x}op"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<Envelope><Body/></Envelope>", "not a SOAP 1.1 envelope: root element is Envelope"),
        (
            b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>',
            "not a SOAP 1.1 envelope: root element is {http://www.w3.org/2003/05/soap-envelope}Envelope",
        ),
        (_envelope("<soap:Header/>"), "SOAP envelope has no Body"),
        (_envelope("<soap:Body>  </soap:Body>"), "SOAP Body is empty"),
    ],
)
def test_body_element_rejects_what_is_not_a_soap_11_request(document: bytes, message: str) -> None:
    with pytest.raises(MalformedInputError) as caught:
        body_element(parse_xml(document))
    assert str(caught.value) == message


def test_envelope_round_trips_its_payload() -> None:
    payload = etree.Element("{urn:x}Answer", nsmap={"x": "urn:x"})
    etree.SubElement(payload, "{urn:x}value").text = "南阳"
    document = build_envelope(payload)
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    answer = parse_envelope(document)
    assert answer.tag == "{urn:x}Answer"
    assert answer.findtext("{urn:x}value") == "南阳"


def test_fault_carries_code_string_and_detail() -> None:
    detail = etree.Element("{urn:x}problem")
    detail.text = "pageSize too large"
    fault = parse_envelope(build_fault(FaultCode.CLIENT, "customer not found: 4130000001", detail))
    assert fault.tag == f"{{{SOAP_ENV_NS}}}Fault"
    code = fault.find("faultcode")
    assert code is not None
    prefix, _, local = code.text.partition(":")
    assert code.nsmap[prefix] == SOAP_ENV_NS
    assert local == "Client"
    assert fault.findtext("faultstring") == "customer not found: 4130000001"
    assert fault.findtext("detail/{urn:x}problem") == "pageSize too large"


def test_fault_without_detail_has_no_detail_element() -> None:
    fault = parse_envelope(build_fault(FaultCode.SERVER, "internal error"))
    assert fault.findtext("faultcode") == "soap:Server"
    assert fault.find("detail") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("soap:Client", FaultCode.CLIENT),
        ("Client", FaultCode.CLIENT),
        ("SOAP-ENV:Server", FaultCode.SERVER),
        ("soap:Client.Validation", FaultCode.CLIENT),
        (f"{{{SOAP_ENV_NS}}}Server", FaultCode.SERVER),
        ("soap:VersionMismatch", None),
        ("", None),
        (None, None),
    ],
)
def test_fault_code_reads_the_forms_peers_send(text: str | None, expected: FaultCode | None) -> None:
    assert fault_code(text) is expected
