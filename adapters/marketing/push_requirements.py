"""What the hub's mappings require of a pushed record: written into the push WSDL's schema, checked per push.

The push WSDL describes records in the marketing system's own layout, and the hub's mappings
(mappings/marketing/*.yaml) turn them into canonical records. A field the mapping requires must be
required by the WSDL too, or a sender learns of its mistake only from an operator looking at parked
records. So the schema's minOccurs are taken from the mappings when the endpoint starts, and each push is
checked against the same requirement before anything is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from ground.errors import ConfigError
from mappings.engine import ABSENT, EachRule, Mapping, Rule, ValueRule

_XSD_NS = "http://www.w3.org/2001/XMLSchema"


@dataclass(frozen=True)
class Requirement:
    """The source fields a mapping requires at one level of a record, and those of its repeating groups."""

    fields: frozenset[str]
    groups: dict[str, Requirement] = field(default_factory=dict)


def _source_field(rule: ValueRule | EachRule, mapping_file: str) -> str:
    if len(rule.source) != 1:
        # The push WSDL carries flat records; a nested source path has no element to require.
        raise ConfigError(
            f"{mapping_file}:{rule.line}: field '{rule.name}' reads the nested source "
            f"{'.'.join(rule.source)}, which the push WSDL cannot carry"
        )
    return rule.source[0]


def _requirement(rules: Iterable[Rule], mapping_file: str) -> Requirement:
    required: set[str] = set()
    groups: dict[str, Requirement] = {}
    for rule in rules:
        if isinstance(rule, ValueRule):
            # A default fills a missing value, so the field is not required of the sender.
            if rule.required and rule.default is ABSENT:
                required.add(_source_field(rule, mapping_file))
        elif isinstance(rule, EachRule):
            name = _source_field(rule, mapping_file)
            groups[name] = _requirement(rule.rules, mapping_file)
            if rule.required:
                required.add(name)
    return Requirement(frozenset(required), groups)


def requirement_of(mapping: Mapping) -> Requirement:
    """The source fields the mapping requires of a record (and of each item of its repeating groups)."""
    return _requirement(mapping.rules, mapping.file)


def _xsd(local: str) -> str:
    return f"{{{_XSD_NS}}}{local}"


def _complex_type(schema: etree._Element, type_name: str) -> etree._Element:
    found = schema.find(f"{_xsd('complexType')}[@name='{type_name}']")
    if found is None:
        raise ConfigError(f"the push WSDL has no complexType {type_name}")
    return found


def _local_type(element: etree._Element) -> str:
    return str(element.get("type", "")).rsplit(":", 1)[-1]


def require_in_schema(schema: etree._Element, type_name: str, requirement: Requirement) -> None:
    """Set minOccurs of type_name's elements (and of its groups' item types) to what requirement says.

    Raises ConfigError when the mapping requires a field the type has no element for.
    """
    elements = {
        str(element.get("name")): element
        for element in _complex_type(schema, type_name).iter(_xsd("element"))
    }
    unknown = sorted((requirement.fields | requirement.groups.keys()) - elements.keys())
    if unknown:
        raise ConfigError(f"the mapping requires {', '.join(unknown)}, which {type_name} in the WSDL lacks")
    for name, element in elements.items():
        if name in requirement.fields:
            # minOccurs defaults to 1 in XSD.
            element.attrib.pop("minOccurs", None)
        else:
            element.set("minOccurs", "0")
    for name, inner in requirement.groups.items():
        items = list(_complex_type(schema, _local_type(elements[name])).iter(_xsd("element")))
        if len(items) != 1:
            raise ConfigError(f"{type_name}/{name} in the push WSDL must be a list of one item element")
        require_in_schema(schema, _local_type(items[0]), inner)


def missing_fields(record: etree._Element, requirement: Requirement, namespace: str) -> list[str]:
    """The required fields the record lacks or leaves blank (an item's as DOCUMENTS/DOCUMENT[2]/DOC_NAME)."""
    children = {
        etree.QName(child).localname: child
        for child in record
        if isinstance(child.tag, str) and etree.QName(child).namespace == namespace
    }
    missing = [
        name
        for name in sorted(requirement.fields)
        if name not in children
        or (name not in requirement.groups and not (children[name].text or "").strip())
    ]
    for name, inner in requirement.groups.items():
        group = children.get(name)
        if group is None:
            continue
        items = [item for item in group if isinstance(item.tag, str)]
        for index, item in enumerate(items, start=1):
            prefix = f"{name}/{etree.QName(item).localname}[{index}]/"
            missing.extend(prefix + path for path in missing_fields(item, inner, namespace))
    return missing
