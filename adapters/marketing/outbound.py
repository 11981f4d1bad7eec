"""From the hub's canonical names back to the marketing system's codes: the code tables read in reverse.

The inbound mappings (mappings/marketing/*.yaml) turn legacy codes into canonical values through the code
tables of mappings/codes/marketing/. Writing into the marketing system needs the same tables the other way
round; each table must then map every canonical value from one code only, which is checked on loading.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ground.errors import ConfigError, InvalidRecordError
from ground.settings import Settings
from mappings.codes import CodeTables, load_code_tables
from mappings.loader import CODES_FOLDER

LEGACY_ZONE = ZoneInfo("Asia/Shanghai")
LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class NoLegacyCodeError(InvalidRecordError):
    """A canonical value the marketing system has no code for; names the field, the value and the table."""

    reason_code = "mapping"

    def __init__(self, field: str, value: object, table: str) -> None:
        self.field = field
        self.value = value
        self.table = table
        super().__init__(f"field '{field}': no code in table {table} for {value!r}")


def _key(value: object) -> tuple[str, object]:
    """A lookup key under which equal values meet: 10 and 10.0 alike, True apart from 1."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    return ("text", value)


def legacy_time(moment: datetime) -> str:
    """An aware time as the marketing system writes it: Asia/Shanghai local, 'YYYY-MM-DD HH:MM:SS'."""
    if moment.tzinfo is None:
        raise ConfigError(f"cannot write naive time {moment!r} to the marketing system: its zone is unknown")
    return moment.astimezone(LEGACY_ZONE).strftime(LEGACY_TIME_FORMAT)


class ReverseCodes:
    """The marketing code tables, canonical value -> legacy code."""

    def __init__(self, codes: CodeTables, system: str = "marketing") -> None:
        self._tables: dict[str, dict[tuple[str, object], str]] = {}
        for table in codes:
            if not table.name.startswith(f"{system}/"):
                continue
            reverse: dict[tuple[str, object], str] = {}
            for code, value in table.codes.items():
                key = _key(value)
                if key in reverse:
                    raise ConfigError(
                        f"{table.name}: codes {reverse[key]!r} and {code!r} both mean {value!r}, so the hub "
                        "cannot tell which to write",
                        file=table.file,
                        line=table.lines.get(code),
                    )
                reverse[key] = code
            self._tables[table.name] = reverse

    def code(self, table: str, value: object, *, field: str) -> str:
        """The legacy code for a canonical value; NoLegacyCodeError names the field when there is none."""
        reverse = self._tables.get(table)
        if reverse is None:
            raise ConfigError(f"code table {table} is not loaded")
        code = reverse.get(_key(value))
        if code is None:
            raise NoLegacyCodeError(field, value, table)
        return code

    def time(self, moment: datetime) -> str:
        """An aware time as the marketing system writes it (legacy_time), beside its codes."""
        return legacy_time(moment)


@cache
def _codes_in(config_dir: Path) -> ReverseCodes:
    return ReverseCodes(load_code_tables(config_dir / "mappings" / CODES_FOLDER, root=config_dir))


@cache
def default_codes() -> ReverseCodes:
    """The reverse code tables of the configuration folder named by the environment (YEKUO_CONFIG_DIR),
    read on first use."""
    return _codes_in(Settings().config_dir)


def submission_arguments(request: Mapping[str, Any], codes: ReverseCodes) -> dict[str, Any]:
    """The CreateApplication arguments (application, and customer for a new one) of an online submission.

    request is the validated submission in canonical names (api.submissions.OnlineApplication as JSON).
    Raises NoLegacyCodeError naming the field whose value has no marketing code.
    """
    location = request.get("site_location") or {}
    application: dict[str, Any] = {
        "CONS_NO": request.get("customer_no"),
        "BUSI_TYPE_CODE": codes.code(
            "marketing/busi_type_code", request["business_type"], field="business_type"
        ),
        "APPLY_CAP": request["requested_capacity_kva"],
        "CUST_CLASS_CODE": codes.code(
            "marketing/cust_class_code", request["customer_class"], field="customer_class"
        ),
        "IMPORTANCE_CODE": codes.code(
            "marketing/importance_code", request["importance_grade"], field="importance_grade"
        ),
        "ELEC_ADDR": request["site_address"],
        "LONGITUDE": location.get("lon"),
        "LATITUDE": location.get("lat"),
        "CHANNEL_CODE": codes.code("marketing/channel_code", request["channel"], field="channel"),
        "ORG_NO": request["org_no"],
        "DOCUMENTS": [
            {
                "DOC_TYPE_CODE": document["doc_type"],
                "DOC_NAME": document["name"],
                "RECEIVED_FLAG": codes.code(
                    "marketing/flag", document["received"], field=f"documents[{index}].received"
                ),
            }
            for index, document in enumerate(request.get("documents") or [])
        ],
    }
    if request.get("requested_voltage_kv") is not None:
        application["VOLT_CODE"] = codes.code(
            "marketing/volt_code", request["requested_voltage_kv"], field="requested_voltage_kv"
        )
    if request.get("urban_rural") is not None:
        application["URBAN_RURAL_FLAG"] = codes.code(
            "marketing/urban_rural_flag", request["urban_rural"], field="urban_rural"
        )
    if request.get("industry_code") is not None:
        application["TRADE_CODE"] = request["industry_code"]
    if request.get("load_type") is not None:
        application["LOAD_TYPE"] = codes.code(
            "marketing/load_type_code", request["load_type"], field="load_type"
        )
    arguments: dict[str, Any] = {"application": _present(application)}
    customer = request.get("customer")
    if customer is not None:
        arguments["customer"] = _present(_customer_fields(customer, codes))
    return arguments


def _customer_fields(customer: Mapping[str, Any], codes: ReverseCodes) -> dict[str, Any]:
    document = customer["identity_document"]
    bank = customer.get("bank_account") or {}
    return {
        "CONS_NAME": customer["name"],
        "ELEC_ADDR": customer.get("address"),
        "ELEC_TYPE_CODE": codes.code(
            "marketing/elec_type_code", customer["category"], field="customer.category"
        ),
        "TRADE_CODE": customer.get("industry_code"),
        "CERT_TYPE_CODE": codes.code(
            "marketing/cert_type_code", document["type"], field="customer.identity_document.type"
        ),
        "CERT_NO": document["number"],
        "BANK_NAME": bank.get("bank"),
        "BANK_ACCT": bank.get("account_no"),
        "CONTACTS": [
            {"CONTACT_NAME": contact["name"], "MOBILE": contact["phone"], "CONTACT_TYPE": contact.get("role")}
            for contact in customer.get("contacts") or []
        ],
    }


def _present(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that have a value; the marketing system reads an absent element as 'not given'."""
    return {name: value for name, value in fields.items() if value is not None}
