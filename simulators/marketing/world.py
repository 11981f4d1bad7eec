"""The marketing simulator's in-memory data: customers and applications under legacy names, thread-safe."""

from __future__ import annotations

import bisect
import copy
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict, cast
from zoneinfo import ZoneInfo

from ground import clock
from ground.errors import ConfigError, SourceRejectedError

# Legacy systems stamp local times in Asia/Shanghai.
LEGACY_ZONE = ZoneInfo("Asia/Shanghai")

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
    RETURN_REASON_CODE: str | None
    ORG_NO: str
    URBAN_RURAL_FLAG: str
    TRADE_CODE: str | None
    TEMP_END_DATE: str | None  # last day of a temporary supply (临时用电), YYYY-MM-DD
    LOAD_TYPE: str | None  # 负荷类型: "00" general, "01" charging pile, "02" heat pump
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


# The marketing system's own workflow: STATUS_CODE values an application passes through, per process.
# "01" acceptance, "02" site survey, "03" scheme reply, "04" external works, "05" design review,
# "06" mid inspection, "07" completion inspection, "08" contract, "09" meter installation and energisation,
# "10" archived. Two codes close an application outside its flow: "11" withdrawn by the customer (撤销) and
# "12" cancelled or terminated by the utility (终止).
TWO_STEP_STATUSES = ("01", "09", "10")
FOUR_STEP_STATUSES = ("01", "03", "04", "09", "10")
FULL_CHAIN_STATUSES = ("01", "02", "03", "05", "06", "07", "08", "09", "10")
ARCHIVED_STATUS = "10"
WITHDRAWN_STATUS = "11"
CANCELLED_STATUS = "12"
CLOSED_STATUSES = frozenset({ARCHIVED_STATUS, WITHDRAWN_STATUS, CANCELLED_STATUS})
# RETURN_REASON_CODE (退回原因), set when the workflow sends an application back to an earlier node: "01"
# information error (信息错误), "02" customer documents missing (资料不全), "03" design change (设计变更),
# "04" grid constraint (电网受限). A forward move clears it.
RETURN_REASON_CODES = frozenset({"01", "02", "03", "04"})
# Low-voltage customers up to these powers are served under 三零 (zero visit, approval, investment): the
# low-voltage ceiling of 160 kW in cities and 100 kW in rural areas, the capacity in kVA taken at this power
# factor. Larger ones are supplied at 10 kV.
ZERO_VISIT_LIMIT_KW = {"1": 160.0, "2": 100.0}
POWER_FACTOR = 0.9


def status_flow(row: ApplicationRow) -> tuple[str, ...]:
    """The STATUS_CODE sequence the marketing system runs for this application.

    Important users (IMPORTANCE_CODE other than "00") take the full chain; otherwise residential and
    low-voltage customers within the ceiling take 2 steps, and larger ones high voltage's 4.
    """
    if row["IMPORTANCE_CODE"] not in ("00", ""):
        return FULL_CHAIN_STATUSES
    cust_class = row["CUST_CLASS_CODE"]
    if cust_class == "01":
        return TWO_STEP_STATUSES
    if cust_class == "02":
        limit = ZERO_VISIT_LIMIT_KW.get(row["URBAN_RURAL_FLAG"], ZERO_VISIT_LIMIT_KW["2"])
        return TWO_STEP_STATUSES if row["APPLY_CAP"] * POWER_FACTOR <= limit else FOUR_STEP_STATUSES
    return FOUR_STEP_STATUSES


APPLICATION_FIELDS: tuple[str, ...] = tuple(ApplicationRow.__annotations__)
CUSTOMER_FIELDS: tuple[str, ...] = tuple(CustomerRow.__annotations__)
DOCUMENT_FIELDS: tuple[str, ...] = tuple(DocumentRow.__annotations__)
CONTACT_FIELDS: tuple[str, ...] = tuple(ContactRow.__annotations__)

# The record's identity and its change time are owned by the world, not by a change.
_CHANGEABLE_APPLICATION_FIELDS = frozenset(APPLICATION_FIELDS) - {"APP_NO", "UPDATE_TIME"}

# Codes the marketing system accepts on an application created online; it refuses any other.
ACCEPTED_CODES: dict[str, frozenset[str]] = {
    "BUSI_TYPE_CODE": frozenset(
        {"101", "111", "113", "105", "115", "211", "213", "215", "201", "203", "217"}
    ),
    "VOLT_CODE": frozenset({"AC02202", "AC03802", "AC00101", "AC00351", "AC01101"}),
    "CUST_CLASS_CODE": frozenset({"01", "02", "03", "04"}),
    "IMPORTANCE_CODE": frozenset({"00", "01", "02", "03", "04"}),
    "CHANNEL_CODE": frozenset({"01", "02", "03", "04", "05"}),
    "URBAN_RURAL_FLAG": frozenset({"1", "2"}),
    "LOAD_TYPE": frozenset({"00", "01", "02"}),
    "ELEC_TYPE_CODE": frozenset({"100", "200", "300", "400", "900"}),
    "CERT_TYPE_CODE": frozenset({"01", "02", "03", "99"}),
    "CONTACT_TYPE": frozenset({"01", "02", "03"}),
    "DOC_TYPE_CODE": frozenset({"01", "02", "03", "04", "05", "06"}),
}
# Feasibility verdicts (可开放容量结论): "01" feasible, "02" feasible with conditions, "03" grid
# reinforcement needed, "04" not feasible.
FEASIBILITY_VERDICTS = frozenset(
    {"01", "02", "03", "04", "05", "06"}
)  # "05": data insufficient, "06": no capacity check
_DEFAULT_VOLT_CODE = {"01": "AC02202", "02": "AC03802", "03": "AC00101", "04": "AC00101"}
_NEW_APPLICATION_REQUIRED = ("BUSI_TYPE_CODE", "APPLY_CAP", "CUST_CLASS_CODE", "CHANNEL_CODE", "ORG_NO")
_NEW_CUSTOMER_REQUIRED = ("CONS_NAME", "ELEC_TYPE_CODE", "CERT_TYPE_CODE", "CERT_NO")

ChangeListener = Callable[[ApplicationRow], None]


@dataclass(frozen=True)
class StageWrite:
    """A stage change another system wrote into the marketing system (UpdateApplicationStage)."""

    request_id: str
    app_no: str
    status_code: str
    changed_at: str
    remark: str | None
    operator: str | None
    applied: bool


@dataclass(frozen=True)
class FeasibilityResult:
    """A feasibility result another system recorded for an application (RecordFeasibilityResult)."""

    request_id: str
    app_no: str
    verdict_code: str
    assessed_at: str
    supply_volt_code: str | None
    remark: str | None


def _watermark_key(row: ApplicationRow) -> tuple[str, str]:
    return (row["UPDATE_TIME"], row["APP_NO"])


def _highest_suffix(keys: Iterable[str]) -> int:
    """The largest number the keys end in (their last 7 digits), 0 when none does."""
    return max((int(key[-7:]) for key in keys if len(key) >= 7 and key[-7:].isdigit()), default=0)


def _text(fields: Mapping[str, object], name: str) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _check_codes(what: str, fields: Mapping[str, object]) -> None:
    for name, accepted in ACCEPTED_CODES.items():
        value = _text(fields, name)
        if value is not None and value not in accepted:
            raise SourceRejectedError(f"{what}: {name} {value!r} is not a valid code")


def _require(what: str, fields: Mapping[str, object], names: Sequence[str]) -> None:
    missing = [name for name in names if _text(fields, name) is None]
    if missing:
        raise SourceRejectedError(f"{what}: required fields missing: {', '.join(missing)}")


def _number(what: str, fields: Mapping[str, object], name: str) -> float | None:
    value = fields.get(name)
    if value is None:
        return None
    try:
        return float(str(value))
    except ValueError:
        raise SourceRejectedError(f"{what}: {name} {value!r} is not a number") from None


class MarketingWorld:
    """Customers and applications of one simulated marketing system.

    Reads return copies, so callers cannot change the world behind its lock. Legacy times are strings in
    "YYYY-MM-DD HH:MM:SS" form, which sort like the times they stand for. Writes that other systems make
    (create, stage update, feasibility result) carry a request id: a repeated request id returns what the
    first request did and changes nothing, so a client may retry a write whose answer it lost. A refused
    write raises SourceRejectedError, which the service answers with a soap:Client fault.
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
        # Request id -> (operation, APP_NO): what each write request did, for repeated requests.
        self._requests: dict[str, tuple[str, str]] = {}
        self._created: dict[str, bool] = {}
        self._stage_writes: list[StageWrite] = []
        self._feasibility: list[FeasibilityResult] = []
        self._listeners: list[ChangeListener] = []
        self._app_numbers = itertools.count(_highest_suffix(self._applications) + 1)
        self._cons_numbers = itertools.count(_highest_suffix(self._customers) + 1)

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

    def subscribe(self, listener: ChangeListener) -> None:
        """Call listener with a copy of every application row after it was created or changed."""
        with self._lock:
            self._listeners.append(listener)

    def _notify(self, row: ApplicationRow) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(copy.deepcopy(row))

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

    def _next_change_time(self) -> datetime:
        # One second after the newest change places a change after every watermark handed out so far.
        if not self._order:
            return clock.now().astimezone(LEGACY_ZONE).replace(tzinfo=None, microsecond=0)
        return datetime.strptime(self._order[-1][0], LEGACY_TIME_FORMAT) + timedelta(seconds=1)

    def advance(self, app_no: str, at: datetime | None = None) -> ApplicationRow:
        """Move an application to the next STATUS_CODE of its flow (a no-op change once archived).

        The forward move clears the return reason of an earlier send-back. A withdrawn or cancelled
        application does not move.
        """
        with self._lock:
            current = self._existing(app_no)
            if current["STATUS_CODE"] in (WITHDRAWN_STATUS, CANCELLED_STATUS):
                raise ConfigError(
                    f"application {app_no} is closed (STATUS_CODE {current['STATUS_CODE']}): no advance"
                )
            flow = status_flow(current)
            position = flow.index(current["STATUS_CODE"]) if current["STATUS_CODE"] in flow else 0
            following = flow[min(position + 1, len(flow) - 1)]
            changed = self._apply_locked(app_no, {"STATUS_CODE": following, "RETURN_REASON_CODE": None}, at)
        self._notify(changed)
        return copy.deepcopy(changed)

    def send_back(
        self, app_no: str, to_status: str, cause: str | None, at: datetime | None = None
    ) -> ApplicationRow:
        """Return an open application to an earlier STATUS_CODE of its flow, with RETURN_REASON_CODE cause.

        cause is one of RETURN_REASON_CODES, or None for a return without a stated reason.
        """
        with self._lock:
            current = self._open_application(app_no, "sent back", at)
            flow = status_flow(current)
            if to_status not in flow:
                raise ConfigError(
                    f"application {app_no}: STATUS_CODE {to_status!r} is not a step of its process "
                    f"({', '.join(flow)})"
                )
            if current["STATUS_CODE"] in flow and flow.index(to_status) >= flow.index(current["STATUS_CODE"]):
                raise ConfigError(
                    f"application {app_no}: a send-back goes to an earlier step than "
                    f"{current['STATUS_CODE']}, not to {to_status}"
                )
            if cause is not None and cause not in RETURN_REASON_CODES:
                raise ConfigError(
                    f"application {app_no}: RETURN_REASON_CODE {cause!r} is not one of "
                    f"{', '.join(sorted(RETURN_REASON_CODES))}"
                )
            changed = self._apply_locked(app_no, {"STATUS_CODE": to_status, "RETURN_REASON_CODE": cause}, at)
        self._notify(changed)
        return copy.deepcopy(changed)

    def withdraw(self, app_no: str, at: datetime | None = None) -> ApplicationRow:
        """The customer withdraws an open application (撤销): STATUS_CODE "11"."""
        return self._close(app_no, WITHDRAWN_STATUS, "withdrawn", at)

    def cancel(self, app_no: str, at: datetime | None = None) -> ApplicationRow:
        """The utility cancels or terminates an open application (终止): STATUS_CODE "12"."""
        return self._close(app_no, CANCELLED_STATUS, "cancelled", at)

    def _close(self, app_no: str, status: str, what: str, at: datetime | None) -> ApplicationRow:
        with self._lock:
            self._open_application(app_no, what, at)
            changed = self._apply_locked(app_no, {"STATUS_CODE": status, "RETURN_REASON_CODE": None}, at)
        self._notify(changed)
        return copy.deepcopy(changed)

    def _existing(self, app_no: str) -> ApplicationRow:
        current = self._applications.get(app_no)
        if current is None:
            raise ConfigError(f"application {app_no!r} does not exist")
        return current

    def _open_application(self, app_no: str, what: str, at: datetime | None) -> ApplicationRow:
        """The application, refused when it is closed or `at` lies before its last change."""
        current = self._existing(app_no)
        if current["STATUS_CODE"] in CLOSED_STATUSES:
            raise ConfigError(
                f"application {app_no} is closed (STATUS_CODE {current['STATUS_CODE']}) and cannot be {what}"
            )
        if at is not None and at.strftime(LEGACY_TIME_FORMAT) < current["UPDATE_TIME"]:
            raise ConfigError(
                f"application {app_no} cannot be {what} at {at:%Y-%m-%d %H:%M:%S}, before its last change "
                f"at {current['UPDATE_TIME']}"
            )
        return current

    def apply_change(
        self, app_no: str, changes: Mapping[str, object], at: datetime | None = None
    ) -> ApplicationRow:
        """Change an application's fields and set its UPDATE_TIME, so pollers see it again.

        at defaults to one second after the newest UPDATE_TIME in the world, which places the change after
        every watermark handed out so far. Returns the changed row.
        """
        with self._lock:
            changed = self._apply_locked(app_no, changes, at)
        self._notify(changed)
        return copy.deepcopy(changed)

    def add_application(self, row: ApplicationRow) -> None:
        """Take in an application entered at the counter: it is listed after every change so far.

        Its (UPDATE_TIME, APP_NO) must sort after every listed application, as a poller that has read up to
        the newest change would otherwise never see it. Its customer must exist.
        """
        with self._lock:
            key = _watermark_key(row)
            if row["APP_NO"] in self._applications:
                raise ConfigError(f"duplicate application APP_NO {row['APP_NO']!r}")
            if row["CONS_NO"] not in self._customers:
                raise ConfigError(f"application {row['APP_NO']}: no customer {row['CONS_NO']!r}")
            if self._order and key <= self._order[-1]:
                raise ConfigError(
                    f"application {row['APP_NO']} changed at {row['UPDATE_TIME']} would be listed before "
                    f"changes already listed (newest {self._order[-1][0]})"
                )
            self._applications[row["APP_NO"]] = copy.deepcopy(row)
            self._order.append(key)
            # Applications created later through the service must not reuse its number.
            upcoming = next(self._app_numbers)
            self._app_numbers = itertools.count(max(upcoming, _highest_suffix([row["APP_NO"]]) + 1))
        self._notify(row)

    def _apply_locked(
        self, app_no: str, changes: Mapping[str, object], at: datetime | None
    ) -> ApplicationRow:
        unknown = sorted(set(changes) - _CHANGEABLE_APPLICATION_FIELDS)
        if unknown:
            raise ConfigError(f"application {app_no}: fields {unknown} cannot be changed")
        current = self._applications.get(app_no)
        if current is None:
            raise ConfigError(f"application {app_no!r} does not exist")
        moment = at or self._next_change_time()
        changed = cast(ApplicationRow, {**current, **copy.deepcopy(dict(changes))})
        changed["UPDATE_TIME"] = moment.strftime(LEGACY_TIME_FORMAT)
        self._order.remove(_watermark_key(current))
        bisect.insort(self._order, _watermark_key(changed))
        self._applications[app_no] = changed
        return changed

    def _repeated(self, request_id: str, operation: str) -> str | None:
        """The APP_NO an earlier request with this id worked on, or None for a new request id."""
        earlier = self._requests.get(request_id)
        if earlier is None:
            return None
        if earlier[0] != operation:
            raise SourceRejectedError(f"request id {request_id} was already used for {earlier[0]}")
        return earlier[1]

    def create_application(
        self,
        request_id: str,
        application: Mapping[str, object],
        customer: Mapping[str, object] | None = None,
        at: datetime | None = None,
    ) -> tuple[ApplicationRow, bool]:
        """Accept an application submitted online; return its row and whether this request created it.

        application holds the application fields (APP_NO, UPDATE_TIME and STATUS_CODE are the world's);
        it names an existing customer by CONS_NO, or customer holds the C_CONS fields of a new one.
        """
        with self._lock:
            earlier = self._repeated(request_id, "CreateApplication")
            if earlier is not None:
                return copy.deepcopy(self._applications[earlier]), False
            row, new_customer = self._new_application(request_id, application, customer, at)
            if new_customer is not None:
                self._customers[new_customer["CONS_NO"]] = new_customer
            self._applications[row["APP_NO"]] = row
            bisect.insort(self._order, _watermark_key(row))
            self._requests[request_id] = ("CreateApplication", row["APP_NO"])
            self._created[row["APP_NO"]] = True
        self._notify(row)
        return copy.deepcopy(row), True

    def _new_application(
        self,
        request_id: str,
        application: Mapping[str, object],
        customer: Mapping[str, object] | None,
        at: datetime | None,
    ) -> tuple[ApplicationRow, CustomerRow | None]:
        what = f"CreateApplication {request_id}"
        _require(what, application, _NEW_APPLICATION_REQUIRED)
        _check_codes(what, application)
        capacity = _number(what, application, "APPLY_CAP")
        if capacity is None or capacity <= 0:
            raise SourceRejectedError(f"{what}: APPLY_CAP must be positive, got {capacity}")
        cons_no = _text(application, "CONS_NO")
        new_customer: CustomerRow | None = None
        if cons_no is not None and customer is not None:
            raise SourceRejectedError(f"{what}: give CONS_NO or a new customer, not both")
        if cons_no is None and customer is None:
            raise SourceRejectedError(f"{what}: CONS_NO or a new customer is required")
        if cons_no is not None and cons_no not in self._customers:
            raise SourceRejectedError(f"{what}: customer not found: {cons_no}")
        moment = (at or self._next_change_time()).replace(microsecond=0)
        cust_class = str(_text(application, "CUST_CLASS_CODE"))
        volt_code = _text(application, "VOLT_CODE") or _DEFAULT_VOLT_CODE[cust_class]
        longitude = _number(what, application, "LONGITUDE")
        latitude = _number(what, application, "LATITUDE")
        urban_rural = _text(application, "URBAN_RURAL_FLAG") or "1"
        if customer is not None:
            new_customer = self._new_customer(what, customer, application, volt_code, urban_rural)
            cons_no = new_customer["CONS_NO"]
        assert cons_no is not None
        app_no = f"{moment:%y%m%d}{next(self._app_numbers):07d}"
        documents = application.get("DOCUMENTS") or []
        if not isinstance(documents, list):
            raise SourceRejectedError(f"{what}: DOCUMENTS must be a list")
        for document in documents:
            _check_codes(what, document)
        row = ApplicationRow(
            APP_NO=app_no,
            CONS_NO=cons_no,
            BUSI_TYPE_CODE=str(_text(application, "BUSI_TYPE_CODE")),
            APPLY_CAP=capacity,
            VOLT_CODE=volt_code,
            CUST_CLASS_CODE=cust_class,
            IMPORTANCE_CODE=_text(application, "IMPORTANCE_CODE") or "00",
            ELEC_ADDR=_text(application, "ELEC_ADDR"),
            LONGITUDE=longitude,
            LATITUDE=latitude,
            CHANNEL_CODE=str(_text(application, "CHANNEL_CODE")),
            HANDLE_TIME=moment.strftime(LEGACY_TIME_FORMAT),
            UPDATE_TIME=moment.strftime(LEGACY_TIME_FORMAT),
            STATUS_CODE="01",
            RETURN_REASON_CODE=None,
            ORG_NO=str(_text(application, "ORG_NO")),
            URBAN_RURAL_FLAG=urban_rural,
            TRADE_CODE=_text(application, "TRADE_CODE"),
            TEMP_END_DATE=_text(application, "TEMP_END_DATE"),
            LOAD_TYPE=_text(application, "LOAD_TYPE"),
            DOCUMENTS=[
                DocumentRow(
                    DOC_TYPE_CODE=str(document.get("DOC_TYPE_CODE", "")),
                    DOC_NAME=str(document.get("DOC_NAME", "")),
                    RECEIVED_FLAG=str(document.get("RECEIVED_FLAG") or "1"),
                )
                for document in documents
            ],
        )
        return row, new_customer

    def _new_customer(
        self,
        what: str,
        customer: Mapping[str, object],
        application: Mapping[str, object],
        volt_code: str,
        urban_rural: str,
    ) -> CustomerRow:
        _require(f"{what} customer", customer, _NEW_CUSTOMER_REQUIRED)
        _check_codes(f"{what} customer", customer)
        contacts = customer.get("CONTACTS") or []
        if not isinstance(contacts, list):
            raise SourceRejectedError(f"{what} customer: CONTACTS must be a list")
        for contact in contacts:
            _check_codes(f"{what} customer contact", contact)
        number = next(self._cons_numbers)
        return CustomerRow(
            CONS_ID=f"9{number:09d}",
            CONS_NO=f"413{number:07d}",
            CONS_NAME=str(_text(customer, "CONS_NAME")),
            ELEC_ADDR=_text(customer, "ELEC_ADDR") or str(_text(application, "ELEC_ADDR") or ""),
            ELEC_TYPE_CODE=str(_text(customer, "ELEC_TYPE_CODE")),
            TRADE_CODE=_text(customer, "TRADE_CODE"),
            VOLT_CODE=volt_code,
            CONTRACT_CAP=0.0,
            STATUS_CODE="2",
            ORG_NO=str(_text(application, "ORG_NO")),
            URBAN_RURAL_FLAG=urban_rural,
            TG_ID=None,
            LONGITUDE=_number(what, application, "LONGITUDE"),
            LATITUDE=_number(what, application, "LATITUDE"),
            CERT_TYPE_CODE=str(_text(customer, "CERT_TYPE_CODE")),
            CERT_NO=str(_text(customer, "CERT_NO")),
            BANK_NAME=_text(customer, "BANK_NAME"),
            BANK_ACCT=_text(customer, "BANK_ACCT"),
            CONTACTS=[
                ContactRow(
                    CONTACT_NAME=str(contact.get("CONTACT_NAME", "")),
                    MOBILE=str(contact.get("MOBILE", "")),
                    CONTACT_TYPE=str(contact.get("CONTACT_TYPE") or "01"),
                )
                for contact in contacts
            ],
        )

    def created_by(self, request_id: str) -> str | None:
        """The APP_NO a CreateApplication request created, or None."""
        with self._lock:
            earlier = self._requests.get(request_id)
            return earlier[1] if earlier and earlier[0] == "CreateApplication" else None

    def created_applications(self) -> list[str]:
        """APP_NOs of every application created through CreateApplication, in creation order."""
        with self._lock:
            return list(self._created)

    def update_stage(
        self,
        request_id: str,
        app_no: str,
        status_code: str,
        changed_at: str,
        *,
        remark: str | None = None,
        operator: str | None = None,
    ) -> tuple[ApplicationRow, bool]:
        """Set an application's STATUS_CODE as another system reports it; return the row and whether it moved.

        Refused when the application is unknown or the status is not part of its process.
        """
        with self._lock:
            earlier = self._repeated(request_id, "UpdateApplicationStage")
            if earlier is not None:
                if earlier != app_no:
                    raise SourceRejectedError(f"request id {request_id} was already used for {earlier}")
                return copy.deepcopy(self._applications[app_no]), False
            current = self._applications.get(app_no)
            if current is None:
                raise SourceRejectedError(f"application not found: {app_no}")
            flow = status_flow(current)
            if status_code not in flow:
                raise SourceRejectedError(
                    f"application {app_no}: STATUS_CODE {status_code} is not a step of its process "
                    f"({', '.join(flow)})"
                )
            moved = current["STATUS_CODE"] != status_code
            # Another system reports the step only, never why: a return reason of an earlier send-back goes.
            changes = {"STATUS_CODE": status_code, "RETURN_REASON_CODE": None}
            row = self._apply_locked(app_no, changes, None) if moved else current
            self._requests[request_id] = ("UpdateApplicationStage", app_no)
            self._stage_writes.append(
                StageWrite(request_id, app_no, status_code, changed_at, remark, operator, moved)
            )
            row = copy.deepcopy(row)
        if moved:
            self._notify(row)
        return row, moved

    def stage_writes(self, app_no: str | None = None) -> list[StageWrite]:
        """Stage changes written by other systems, oldest first (those of one application, if given)."""
        with self._lock:
            return [write for write in self._stage_writes if app_no in (None, write.app_no)]

    def record_feasibility(
        self,
        request_id: str,
        app_no: str,
        verdict_code: str,
        assessed_at: str,
        *,
        supply_volt_code: str | None = None,
        remark: str | None = None,
    ) -> bool:
        """Keep a feasibility result for an application; False when this request id was recorded already."""
        with self._lock:
            earlier = self._repeated(request_id, "RecordFeasibilityResult")
            if earlier is not None:
                return False
            if app_no not in self._applications:
                raise SourceRejectedError(f"application not found: {app_no}")
            if verdict_code not in FEASIBILITY_VERDICTS:
                raise SourceRejectedError(
                    f"application {app_no}: verdict {verdict_code!r} is not a valid code"
                )
            if supply_volt_code is not None and supply_volt_code not in ACCEPTED_CODES["VOLT_CODE"]:
                raise SourceRejectedError(
                    f"application {app_no}: VOLT_CODE {supply_volt_code!r} is not a valid code"
                )
            self._requests[request_id] = ("RecordFeasibilityResult", app_no)
            self._feasibility.append(
                FeasibilityResult(request_id, app_no, verdict_code, assessed_at, supply_volt_code, remark)
            )
            return True

    def feasibility_results(self, app_no: str | None = None) -> list[FeasibilityResult]:
        """Feasibility results recorded, oldest first (those of one application, if given)."""
        with self._lock:
            return [result for result in self._feasibility if app_no in (None, result.app_no)]
