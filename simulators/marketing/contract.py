"""The marketing service's WSDL and the XML Schema inside it, which every request is validated against."""

from __future__ import annotations

from pathlib import Path

from ground.soap import WsdlContract

WSDL_PATH = Path(__file__).with_name("marketing.wsdl")
NAMESPACE = "urn:yekuo:sim:marketing:v1"

_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
_WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_XSD_NS = "http://www.w3.org/2001/XMLSchema"


def qname(local: str) -> str:
    """The Clark notation name of an element in the service's namespace."""
    return f"{{{NAMESPACE}}}{local}"


class Contract(WsdlContract):
    """The simulator's WSDL: served with a given endpoint address; validates request elements."""

    def __init__(self, wsdl_path: Path = WSDL_PATH) -> None:
        super().__init__(wsdl_path)
