"""The marketing service's WSDL and the XML Schema inside it, which every request is validated against."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

from lxml import etree

from yekuo.errors import MalformedInputError
from yekuo.soap import parse_xml

WSDL_PATH = Path(__file__).with_name("marketing.wsdl")
NAMESPACE = "urn:yekuo:sim:marketing:v1"

_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_XSD_NS = "http://www.w3.org/2001/XMLSchema"


def qname(local: str) -> str:
    """The Clark notation name of an element in the service's namespace."""
    return f"{{{NAMESPACE}}}{local}"


class Contract:
    """The parsed WSDL: serves it with a given endpoint address and validates request elements."""

    def __init__(self, wsdl_path: Path = WSDL_PATH) -> None:
        self._wsdl = parse_xml(wsdl_path.read_bytes(), max_bytes=256 * 1024, max_depth=16)
        schema_element = self._wsdl.find(f"{{{_WSDL_NS}}}types/{{{_XSD_NS}}}schema")
        self._schema = etree.XMLSchema(copy.deepcopy(schema_element))
        # An XMLSchema keeps its error log on the instance, so validations must not interleave.
        self._schema_lock = threading.Lock()

    def wsdl(self, location: str) -> bytes:
        """The WSDL document with every soap:address pointing at location."""
        document = copy.deepcopy(self._wsdl)
        for address in document.iter(f"{{{_WSDL_SOAP_NS}}}address"):
            address.set("location", location)
        return bytes(etree.tostring(document, xml_declaration=True, encoding="utf-8"))

    def validate(self, element: etree._Element) -> None:
        """Raise MalformedInputError listing every schema violation of a message element."""
        with self._schema_lock:
            if self._schema.validate(element):
                return
            problems = [f"{error.path}: {error.message}" for error in self._schema.error_log]
        name = etree.QName(element).localname
        raise MalformedInputError(f"{name} does not satisfy the schema: " + "; ".join(problems))
