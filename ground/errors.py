"""The one exception tree of yekuo-hub; adapters wrap driver errors (zeep, SQLAlchemy, pika) in it.

    YekuoError                      base of everything the hub raises on purpose
    ├── ConfigError                 a mapping, route, code table or setting is wrong (file:line in the text)
    ├── InvalidRecordError          one legacy record cannot become a canonical event; retrying cannot help
    │   ├── MappingError            a mapping step failed: unknown code, missing required field, bad value
    │   ├── SchemaViolationError    the mapped document does not satisfy the canonical model
    │   └── MalformedInputError     the raw input itself is broken: bad XML, bad CSV row, wrong encoding
    ├── SourceError                 a legacy system could not be read or written
    │   ├── SourceUnavailableError  transient: timeout, reset, HTTP 5xx, database outage (retry)
    │   └── SourceRejectedError     the legacy system refused the request (business fault; do not retry)
    ├── DestinationRefusedError     a webhook URL is not http(s) or reaches an address not allowed (no retry)
    ├── DestinationUnresolvedError  a webhook URL's host name resolves to no address now (retry)
    ├── FencedOutError              a duty's write carries a lease token another instance has superseded
    └── BusError                    the message bus failed
        ├── BusUnavailableError     transient: connection lost, broker down (retry)
        ├── UnroutableError         a mandatory publish matched no queue; the event stays unsent
        └── PublishNotConfirmedError the broker nacked a publish; the event stays unsent

Invalid records are parked with their reason for an operator; transient errors are retried with backoff.
"""

from __future__ import annotations


class YekuoError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(YekuoError):
    """A mapping, route, code table or setting is wrong."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}")


class InvalidRecordError(YekuoError):
    """A legacy record that cannot become a canonical event; parked, never retried."""

    reason_code = "invalid"


class MappingError(InvalidRecordError):
    """A mapping step failed; names the mapping file and line, the field and the offending value."""

    reason_code = "mapping"

    def __init__(
        self,
        reason: str,
        *,
        file: str,
        line: int,
        field: str,
        value: object = None,
        source_path: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.field = field
        self.value = value
        self.source_path = source_path
        source = f" (source {source_path})" if source_path else ""
        super().__init__(f"{file}:{line}: field '{field}'{source}: {reason}: {value!r}")


class SchemaViolationError(InvalidRecordError):
    """The mapped document does not satisfy the canonical model."""

    reason_code = "schema"


class MalformedInputError(InvalidRecordError):
    """The raw input itself is broken (bad XML, a broken CSV row, a wrong encoding)."""

    reason_code = "malformed"


class SourceError(YekuoError):
    """A legacy system could not be read or written."""


class SourceUnavailableError(SourceError):
    """A transient failure of a legacy system; worth retrying."""


class SourceRejectedError(SourceError):
    """The legacy system refused the request; retrying cannot help."""


class DestinationRefusedError(YekuoError):
    """A webhook URL the hub will not deliver to: its scheme, or an address it is or resolves to."""


class DestinationUnresolvedError(YekuoError):
    """A webhook URL's host name does not resolve (now); a delivery tries again later."""


class FencedOutError(YekuoError):
    """A duty's write came with a lease token that is no longer current: another instance took the duty over
    while this one paused. The transaction rolls back; the duty's loop waits for the lease again."""

    def __init__(self, duty: str, token: int, current: int | None, owner: str | None) -> None:
        self.duty = duty
        self.token = token
        super().__init__(
            f"{duty}: lease token {token} is superseded (now {current if current is not None else 'none'}, "
            f"held by {owner or 'nobody'})"
        )


class BusError(YekuoError):
    """The message bus failed."""


class BusUnavailableError(BusError):
    """The broker cannot be reached or the connection was lost; worth retrying."""


class UnroutableError(BusError):
    """A mandatory publish matched no queue; message_ids names the messages the broker returned."""

    def __init__(self, message: str, *, message_ids: tuple[str, ...] = ()) -> None:
        self.message_ids = message_ids
        super().__init__(message)


class PublishNotConfirmedError(BusError):
    """The broker refused (nacked) a publish."""
