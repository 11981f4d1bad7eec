"""The marketing simulator's in-memory data: customers and applications under legacy names, thread-safe."""

from __future__ import annotations

import bisect
import copy
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypedDict, cast

from yekuo.errors import ConfigError

LEGACY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class DocumentRow(TypedDict):
    """A document handed in with an application."""

    DOC_TYPE_CODE: str
    DOC_NAME: str
    RECEIVED_FLAG: str


class ApplicationRow(TypedDict):
    """An application row; the key order is the order of the WSDL's Application sequence."""

    APP_NO: str
    CONS_NO: str
    BUSI_TYPE_CODE: str
    APPLY_CAP: float
    VOLT_CODE: str
    CUST_CLASS_CODE: str
    IMPORTANCE_CODE: str
    ELEC_ADDR: str | None
    LONGITUDE: float | None
    LATITUDE: float | None
    CHANNEL_CODE: str
    HANDLE_TIME: str
    UPDATE_TIME: str
    STATUS_CODE: str
    ORG_NO: str
    URBAN_RURAL_FLAG: str
    DOCUMENTS: list[DocumentRow]


class ContactRow(TypedDict):
    """A contact person of a customer."""

    CONTACT_NAME: str
    MOBILE: str
    CONTACT_TYPE: str


class CustomerRow(TypedDict):
    """A C_CONS customer row; the key order is the order of the WSDL's Customer sequence."""

    CONS_ID: str
    CONS_NO: str
    CONS_NAME: str
    ELEC_ADDR: str
    ELEC_TYPE_CODE: str
    TRADE_CODE: str | None
    VOLT_CODE: str
    CONTRACT_CAP: float
    STATUS_CODE: str
    ORG_NO: str
    URBAN_RURAL_FLAG: str
    TG_ID: str | None
    LONGITUDE: float | None
    LATITUDE: float | None
    CERT_TYPE_CODE: str
    CERT_NO: str
    BANK_NAME: str | None
    BANK_ACCT: str | None
    CONTACTS: list[ContactRow]


APPLICATION_FIELDS: tuple[str, ...] = tuple(ApplicationRow.__annotations__)
CUSTOMER_FIELDS: tuple[str, ...] = tuple(CustomerRow.__annotations__)
DOCUMENT_FIELDS: tuple[str, ...] = tuple(DocumentRow.__annotations__)
CONTACT_FIELDS: tuple[str, ...] = tuple(ContactRow.__annotations__)

# The record's identity and its change time are owned by the world, not by a change.
_CHANGEABLE_APPLICATION_FIELDS = frozenset(APPLICATION_FIELDS) - {"APP_NO", "UPDATE_TIME"}


def _watermark_key(row: ApplicationRow) -> tuple[str, str]:
    return (row["UPDATE_TIME"], row["APP_NO"])


class MarketingWorld:
    """Customers and applications of one simulated marketing system.

    Reads return copies, so callers cannot change the world behind its lock. Legacy times are strings in
    "YYYY-MM-DD HH:MM:SS" form, which sort like the times they stand for.
    """

    def __init__(self, customers: Iterable[CustomerRow], applications: Iterable[ApplicationRow]) -> None:
        self._lock = threading.RLock()
        self._customers: dict[str, CustomerRow] = {}
        for customer in customers:
            if customer["CONS_NO"] in self._customers:
                raise ConfigError(f"duplicate customer CONS_NO {customer['CONS_NO']!r}")
            self._customers[customer["CONS_NO"]] = copy.deepcopy(customer)
        self._applications: dict[str, ApplicationRow] = {}
        for application in applications:
            if application["APP_NO"] in self._applications:
                raise ConfigError(f"duplicate application APP_NO {application['APP_NO']!r}")
            self._applications[application["APP_NO"]] = copy.deepcopy(application)
        # Sorted (UPDATE_TIME, APP_NO) pairs: the order in which changes are listed.
        self._order = sorted(_watermark_key(row) for row in self._applications.values())

    @property
    def customer_count(self) -> int:
        """How many customers the world holds."""
        with self._lock:
            return len(self._customers)

    @property
    def application_count(self) -> int:
        """How many applications the world holds."""
        with self._lock:
            return len(self._applications)

    def customer(self, cons_no: str) -> CustomerRow | None:
        """The customer with this number, or None."""
        with self._lock:
            row = self._customers.get(cons_no)
            return copy.deepcopy(row) if row is not None else None

    def customers(self, cons_nos: Sequence[str]) -> list[CustomerRow]:
        """The known customers among cons_nos, in the order asked, each once."""
        with self._lock:
            found = dict.fromkeys(number for number in cons_nos if number in self._customers)
            return [copy.deepcopy(self._customers[number]) for number in found]

    def application(self, app_no: str) -> ApplicationRow | None:
        """The application with this number, or None."""
        with self._lock:
            row = self._applications.get(app_no)
            return copy.deepcopy(row) if row is not None else None

    def all_applications(self) -> list[ApplicationRow]:
        """Every application, ordered by (UPDATE_TIME, APP_NO)."""
        with self._lock:
            return [copy.deepcopy(self._applications[app_no]) for _, app_no in self._order]

    def changed_applications(
        self, since_time: str | None, since_key: str | None, page_size: int
    ) -> tuple[list[ApplicationRow], bool]:
        """Applications changed strictly after (since_time, since_key), at most page_size, and if more follow.

        Without since_time the listing starts at the beginning; a missing since_key counts as the lowest key,
        so every application changed at since_time is included.
        """
        with self._lock:
            after = (since_time, since_key or "")
            start = 0 if since_time is None else bisect.bisect_right(self._order, after)
            keys = self._order[start : start + page_size]
            rows = [copy.deepcopy(self._applications[app_no]) for _, app_no in keys]
            return rows, start + page_size < len(self._order)

    def latest_update_time(self) -> str | None:
        """The newest UPDATE_TIME in the world, or None when it holds no application."""
        with self._lock:
            return self._order[-1][0] if self._order else None

    def apply_change(
        self, app_no: str, changes: Mapping[str, object], at: datetime | None = None
    ) -> ApplicationRow:
        """Change an application's fields and set its UPDATE_TIME, so pollers see it again.

        at defaults to one second after the newest UPDATE_TIME in the world, which places the change after
        every watermark handed out so far. Returns the changed row.
        """
        unknown = sorted(set(changes) - _CHANGEABLE_APPLICATION_FIELDS)
        if unknown:
            raise ConfigError(f"application {app_no}: fields {unknown} cannot be changed")
        with self._lock:
            current = self._applications.get(app_no)
            if current is None:
                raise ConfigError(f"application {app_no!r} does not exist")
            if at is None:
                # The world holds at least this application, so _order is not empty.
                at = datetime.strptime(self._order[-1][0], LEGACY_TIME_FORMAT) + timedelta(seconds=1)
            changed = cast(ApplicationRow, {**current, **copy.deepcopy(dict(changes))})
            changed["UPDATE_TIME"] = at.strftime(LEGACY_TIME_FORMAT)
            self._order.remove(_watermark_key(current))
            bisect.insort(self._order, _watermark_key(changed))
            self._applications[app_no] = changed
            return copy.deepcopy(changed)
