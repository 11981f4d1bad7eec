"""Column types that keep personal data encrypted at rest, and the re-encryption behind key rotation.

PiiFieldsJson seals only the fields a canonical model marks x-pii (customers.document): the rest of the
document stays readable and queryable. SealedJson, SealedText and SealedBytes seal a whole value, for
what holds personal data in no fixed place: raw legacy records, dead-lettered messages, SOAP bodies,
submissions, event bodies in the outbox, and reasons that quote a rejected value. Every read and write
through SQLAlchemy passes through these types, so no query has to remember to encrypt. Values written
before encryption was introduced are read as they are and sealed by the next `yekuo pii rotate-key`.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

from canonical_model.pii import PiiPath, pii_paths
from store.crypto import Keyring, is_sealed, keyring_of, sealed_key_id

PLAINTEXT = "plaintext"  # key_usage's name for personal data stored unsealed


class SealedJson(sa.TypeDecorator[Any]):
    """A JSON value sealed whole; it is stored as one JSON string enc:v1:<kid>:<data>."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return keyring_of(dialect).seal_text(text, self.field)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if is_sealed(value):
            return json.loads(keyring_of(dialect).open_text(value, self.field))
        return value

    def stored_key_ids(self, raw: Any) -> list[str | None]:
        """Key ids of the stored value (None: stored unsealed)."""
        return _whole_value_key_ids(raw)


class SealedText(sa.TypeDecorator[str]):
    """Text sealed whole, stored as enc:v1:<kid>:<data>."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def process_bind_param(self, value: str | None, dialect: sa.Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).seal_text(value, self.field)

    def process_result_value(self, value: str | None, dialect: sa.Dialect) -> str | None:
        if value is not None and is_sealed(value):
            return keyring_of(dialect).open_text(value, self.field)
        return value

    def stored_key_ids(self, raw: Any) -> list[str | None]:
        """Key ids of the stored value (None: stored unsealed)."""
        return _whole_value_key_ids(raw)


class SealedBytes(sa.TypeDecorator[bytes]):
    """Bytes sealed whole: b"enc:v1:<kid>:" followed by nonce, ciphertext and tag (no base64)."""

    impl = sa.LargeBinary
    cache_ok = True

    def __init__(self, field: str) -> None:
        super().__init__()
        self.field = field

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        # MariaDB's BLOB stops at 64 KiB.
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.LONGBLOB())
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value: bytes | None, dialect: sa.Dialect) -> bytes | None:
        return None if value is None else keyring_of(dialect).seal_bytes(bytes(value), self.field)

    def process_result_value(self, value: bytes | None, dialect: sa.Dialect) -> bytes | None:
        if value is None:
            return None
        stored = bytes(value)
        return keyring_of(dialect).open_bytes(stored, self.field) if is_sealed(stored) else stored

    def stored_key_ids(self, raw: Any) -> list[str | None]:
        """Key ids of the stored value (None: stored unsealed)."""
        return _whole_value_key_ids(raw)


class PiiFieldsJson(sa.TypeDecorator[Any]):
    """A canonical document whose x-pii fields are sealed one by one, each bound to its own path."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self, field: str, model: type[BaseModel]) -> None:
        super().__init__()
        self.field = field
        self.model = model

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        keyring = keyring_of(dialect)
        for path in pii_paths(self.model):
            value = map_at(value, path, functools.partial(keyring.seal_text, field=self._where(path)))
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        keyring = keyring_of(dialect)
        for path in pii_paths(self.model):
            value = map_at(value, path, functools.partial(_open_if_sealed, keyring, self._where(path)))
        return value

    def stored_key_ids(self, raw: Any) -> list[str | None]:
        """Key ids of every personal field in the stored document (None: a field stored unsealed)."""
        return [sealed_key_id(leaf) for path in pii_paths(self.model) for leaf in _leaves_at(raw, path)]

    def _where(self, path: PiiPath) -> str:
        return f"{self.field}:{'.'.join(path)}"


SealingType = SealedJson | SealedText | SealedBytes | PiiFieldsJson


def sealed_columns(metadata: sa.MetaData) -> list[sa.Column[Any]]:
    """Every column of the schema that keeps personal data sealed, table by table."""
    return [
        column
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, SealedJson | SealedText | SealedBytes | PiiFieldsJson)
    ]


@dataclass(frozen=True)
class ColumnRotation:
    """What re-encryption did in one column: values looked at, and values sealed anew with the active key."""

    column: str
    examined: int
    resealed: int


def reseal(
    engine: Engine,
    metadata: sa.MetaData,
    *,
    batch_size: int = 500,
    progress: Callable[[ColumnRotation], None] | None = None,
) -> list[ColumnRotation]:
    """Seal every stored personal value with the engine's active key; values already under it are skipped.

    Each batch commits on its own, so an interrupted run keeps what it did, and running it again only
    redoes what is left. Rows are locked while rewritten, so a concurrent writer's newer value is kept.
    """
    active = keyring_of(engine.dialect).active_kid
    results: list[ColumnRotation] = []
    for column in sealed_columns(metadata):
        examined = resealed = 0
        for batch in _raw_batches(engine, column, batch_size):
            stale = [
                key for key, raw in batch if any(kid != active for kid in _type(column).stored_key_ids(raw))
            ]
            examined += len(batch)
            if stale:
                resealed += _rewrite(engine, column, stale)
            if progress is not None:
                progress(ColumnRotation(_name(column), examined, resealed))
        results.append(ColumnRotation(_name(column), examined, resealed))
    return results


def key_usage(engine: Engine, metadata: sa.MetaData, *, batch_size: int = 1000) -> dict[str, Counter[str]]:
    """Per sealed column, how many stored personal values each key id seals (and how many are plaintext)."""
    usage: dict[str, Counter[str]] = {}
    for column in sealed_columns(metadata):
        counts: Counter[str] = Counter()
        for batch in _raw_batches(engine, column, batch_size):
            for _, raw in batch:
                counts.update(kid or PLAINTEXT for kid in _type(column).stored_key_ids(raw))
        usage[_name(column)] = counts
    return usage


def _type(column: sa.Column[Any]) -> SealingType:
    return cast(SealingType, column.type)


def _name(column: sa.Column[Any]) -> str:
    return f"{column.table.name}.{column.name}"


def _primary_key(column: sa.Column[Any]) -> sa.Column[Any]:
    keys = list(column.table.primary_key.columns)
    if len(keys) != 1:
        raise ValueError(f"{column.table.name} needs a one-column primary key to be re-encrypted in batches")
    return keys[0]


def _raw_batches(engine: Engine, column: sa.Column[Any], batch_size: int) -> Iterator[list[tuple[Any, Any]]]:
    """(primary key, stored value as the database holds it) in key order, one batch at a time."""
    key = _primary_key(column)
    raw = sa.type_coerce(column, _type(column).impl_instance)
    after: Any = None
    while True:
        query = sa.select(key, raw).where(column.is_not(None)).order_by(key).limit(batch_size)
        if after is not None:
            query = query.where(key > after)
        with engine.connect() as conn:
            rows = [(row[0], row[1]) for row in conn.execute(query)]
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _rewrite(engine: Engine, column: sa.Column[Any], keys: list[Any]) -> int:
    """Read each row's value (opened with any key) and write it back (sealed with the active key)."""
    key_column = _primary_key(column)
    rewritten = 0
    with engine.begin() as conn:
        for key in keys:
            value = conn.execute(sa.select(column).where(key_column == key).with_for_update()).first()
            if value is None:
                continue  # deleted meanwhile
            conn.execute(column.table.update().where(key_column == key).values({column.name: value[0]}))
            rewritten += 1
    return rewritten


def _open_if_sealed(keyring: Keyring, field: str, text: str) -> str:
    return keyring.open_text(text, field) if is_sealed(text) else text


def _whole_value_key_ids(raw: Any) -> list[str | None]:
    if raw is None:
        return []
    return [sealed_key_id(raw)]


def map_at(node: Any, path: PiiPath, change: Callable[[str], str]) -> Any:
    """The node with change applied to the strings at path; only the containers on the way are copied."""
    if not path:
        return change(node) if isinstance(node, str) else node
    head, rest = path[0], path[1:]
    if head == "[]":
        return [map_at(item, rest, change) for item in node] if isinstance(node, list) else node
    if isinstance(node, dict) and node.get(head) is not None:
        return {**node, head: map_at(node[head], rest, change)}
    return node


def _leaves_at(node: Any, path: PiiPath) -> Iterator[str]:
    if not path:
        if isinstance(node, str):
            yield node
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        for item in node if isinstance(node, list) else ():
            yield from _leaves_at(item, rest)
    elif isinstance(node, dict) and node.get(head) is not None:
        yield from _leaves_at(node[head], rest)
