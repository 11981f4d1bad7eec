"""What operators see of a parked message: the same message with its personal data masked.

Which fields hold personal data is derived, never listed by hand. A canonical field does when its model
marks it x-pii (canonical_model.pii). A legacy field does when a mapping of its system maps it into such
a field: the marketing customer mapping feeds identity_document.number from CERT_NO, bank_account.
account_no from BANK_ACCT and contacts[].phone from CONTACTS[].MOBILE, so those three names are personal
in every marketing record. A new mapping that feeds a personal field makes its source personal too.

Masked in a parked message:
- an invalid legacy record: every value under one of its system's personal field names, wherever it sits
  (a record is often parked because its shape is wrong, so names are matched at any depth);
- a dead letter or an unreadable bus message: the personal fields of the canonical event it carries;
- every text shown beside them (reasons, failure messages, headers, other fields, operator action
  details): each personal value of the same message wherever it is quoted, and whatever is shaped like
  a resident ID, credit code, mobile or bank account number (the log redaction, ground.logs.redact).

When the mappings cannot be read, which legacy names are personal is unknown: every value of a legacy
record is masked then, rather than some shown by guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from pydantic import BaseModel

from canonical_model.pii import PiiPath, mask_value, pii_paths
from canonical_model.registry import MODELS, schema_uri
from ground.logs import redact
from mappings.engine import EachRule, Mapping, Rule, TemplateRule, Text, ValueRule
from store.parking import ParkedMessage

SourcePath = tuple[str, ...]


@dataclass(frozen=True)
class LegacyPii:
    """The legacy field names holding personal data, per source system (complete=False: not known)."""

    by_system: AbcMapping[str, frozenset[str]]
    complete: bool = True

    @classmethod
    def from_mappings(cls, mappings: Iterable[Mapping]) -> LegacyPii:
        """Every source field a mapping feeds into a personal canonical field, by the mapping's system."""
        found: dict[str, set[str]] = {}
        for mapping in mappings:
            names = found.setdefault(mapping.source_system, set())
            personal = pii_paths(mapping.target)
            names.update(source[-1] for source in _personal_sources(mapping.rules, (), personal) if source)
        return cls({system: frozenset(names) for system, names in found.items()})

    @classmethod
    def unknown(cls) -> LegacyPii:
        """The classification when the mappings cannot be read: every legacy value counts as personal."""
        return cls({}, complete=False)

    def fields_of(self, system: str) -> frozenset[str] | None:
        """Personal field names of a system's records (every system's for one no mapping reads);
        None when not known, meaning every value is personal."""
        if not self.complete:
            return None
        if system in self.by_system:
            return self.by_system[system]
        return frozenset().union(*self.by_system.values())


@dataclass(frozen=True)
class MaskedParked:
    """A parked message as shown masked, where something was hidden, and how to mask text about it."""

    message: ParkedMessage
    hidden: tuple[str, ...]
    mask_text: Callable[[str], str]


def mask_parked(message: ParkedMessage, legacy: LegacyPii) -> MaskedParked:
    """The message with personal data masked in its payload and its reason."""
    masking = _Masking()
    payload = message.payload
    if message.kind == "dead" and isinstance(payload, dict):
        body = payload.get("body")
        if isinstance(body, str):
            masking.event_values(body, "payload.body")
    elif message.source_system is not None and isinstance(payload, dict):
        payload = masking.legacy(payload, legacy.fields_of(message.source_system), "payload")
    elif isinstance(payload, str):
        masking.event_values(payload, "payload")
    payload = masking.scrub(payload, "payload")
    reason = masking.text(message.reason, "reason")
    shown = replace(message, payload=payload, reason=reason)
    return MaskedParked(shown, tuple(sorted(masking.hidden)), masking.text)


class _Masking:
    """The masking of one message: the personal values found in it, and where something was hidden."""

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.hidden: set[str] = set()
        self._quoted: re.Pattern[str] | None = None

    def whole(self, value: Any, where: str) -> Any:
        """The value with every scalar inside it masked; keys and structure stay."""
        if isinstance(value, dict):
            return {key: self.whole(item, where) for key, item in value.items()}
        if isinstance(value, list):
            return [self.whole(item, where) for item in value]
        if value is None or isinstance(value, bool) or not str(value).strip():
            return value
        text = str(value)
        self.values.add(text)
        self._quoted = None
        self.hidden.add(where)
        return mask_value(text)

    def legacy(self, value: Any, names: frozenset[str] | None, where: str) -> Any:
        """A legacy record with every value under a personal name masked (names None: every value)."""
        if names is None:
            return self.whole(value, where)
        if isinstance(value, dict):
            return {
                key: self.whole(item, f"{where}.{key}")
                if key in names
                else self.legacy(item, names, f"{where}.{key}")
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.legacy(item, names, f"{where}[]") for item in value]
        return value

    def event_values(self, text: str, where: str) -> None:
        """Note the personal values of the canonical event a message body carries, if it is one."""
        try:
            event = json.loads(text)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        model = _models_by_schema().get(str(event.get("dataschema")))
        if model is not None:
            for path in pii_paths(model):
                self._at(event.get("data"), path, f"{where}.data")

    def _at(self, node: Any, path: PiiPath, where: str) -> None:
        if not path:
            self.whole(node, where)
        elif path[0] == "[]":
            for item in node if isinstance(node, list) else ():
                self._at(item, path[1:], f"{where}[]")
        elif isinstance(node, dict) and path[0] in node:
            self._at(node[path[0]], path[1:], f"{where}.{path[0]}")

    def scrub(self, value: Any, where: str) -> Any:
        """Every text inside the value masked as free text (dictionary keys are names, kept)."""
        if isinstance(value, str):
            return self.text(value, where)
        if isinstance(value, dict):
            return {key: self.scrub(item, f"{where}.{key}") for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub(item, f"{where}[]") for item in value]
        return value

    def text(self, text: str, where: str | None = None) -> str:
        """Free text with this message's personal values and anything shaped like personal data masked."""
        quoted = self._quoted_pattern()
        masked = redact(quoted.sub(lambda found: mask_value(found.group()), text) if quoted else text)
        if where is not None and masked != text:
            self.hidden.add(where)
        return masked

    def _quoted_pattern(self) -> re.Pattern[str] | None:
        """Each personal value, plain or as written inside JSON, standing alone (not inside a longer code)."""
        if self._quoted is None and self.values:
            forms = {
                form
                for value in self.values
                for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1])
            }
            alternatives = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
            self._quoted = re.compile(f"(?<![0-9A-Za-z])(?:{alternatives})(?![0-9A-Za-z])")
        return self._quoted


def _personal_sources(
    rules: Iterable[Rule], prefix: PiiPath, personal: tuple[PiiPath, ...]
) -> Iterator[SourcePath]:
    """Source paths of the rules whose target is, holds or lies inside a personal field."""
    for rule in rules:
        target = (*prefix, *rule.target)
        if isinstance(rule, EachRule):
            if any(target[: len(path)] == path for path in personal):
                yield rule.source
            else:
                yield from _personal_sources(rule.rules, (*target, "[]"), personal)
        elif _touches(target, personal):
            if isinstance(rule, ValueRule):
                yield rule.source
            elif isinstance(rule, TemplateRule):
                yield from _template_sources(rule.value)


def _touches(target: PiiPath, personal: tuple[PiiPath, ...]) -> bool:
    return any(target[: len(path)] == path or path[: len(target)] == target for path in personal)


def _template_sources(value: Any) -> Iterator[SourcePath]:
    if isinstance(value, Text):
        yield from (path for _, path in value.pieces if path is not None)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _template_sources(item)
    elif isinstance(value, list):
        for item in value:
            yield from _template_sources(item)


@cache
def _models_by_schema() -> dict[str, type[BaseModel]]:
    return {schema_uri(name): model for model, name in MODELS.values()}
