"""Debezium envelopes (Kafka Connect JsonConverter, with or without schemas) -> `ChangeRecord`s. Pure: no I/O.

`decode_message(topic, key, value, columns)` returns a `ChangeRecord`, or `Skipped` for messages that carry no row
change (tombstones, heartbeats, schema changes, transaction markers, logical-decoding messages), or raises a
`DecodeError` subclass whose `reason` says what is wrong and what to do.

Records with an inline Connect schema decode generically (any table, any column). Schemaless records take their column
types from `columns` (`claimsctl export-columns`). Decoders are compiled once per distinct schema: a message whose
schema text was seen before skips parsing its schema altogether.

Unchanged TOASTed columns: Debezium sends `unavailable.value.placeholder` (default `__debezium_unavailable_value`)
in one of several shapes (text, base64 of its bytes, `[text]`, a list of its byte values for int arrays, a UUID made
from it, `{text: text}` for hstore). In updates those columns are left out of `row` and listed in `unchanged`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from claims_shared.contracts.cdc import OPS, ChangeRecord, SourcePosition
from claims_shared.contracts.columns import ColumnType, ColumnTypes
from services.cdc_normalizer.semantic_types import (
    FieldDecoder,
    ValueDecodeError,
    connect_field_decoder,
    pg_type_decoder,
)

DEFAULT_PLACEHOLDER = "__debezium_unavailable_value"
HEARTBEAT_TOPIC_PREFIX = "__debezium-heartbeat"
SKIP_KINDS = ("tombstone", "heartbeat", "schema_change", "transaction_marker", "logical_message")

_HEARTBEAT_SCHEMA = "io.debezium.connector.common.Heartbeat"
_TX_MARKER_FIELDS = frozenset({"status", "id"})
_SNAPSHOT_TRUE = frozenset({"true", "last", "first", "incremental", "last_in_data_collection",
                            "first_in_data_collection"})
_PAYLOAD_SEP = b',"payload":'
_CACHE_LIMIT = 4096


# -------------------------------------------------------------------------------------------------- errors

class DecodeError(Exception):
    """A message that cannot be decoded. `reason` says what is wrong and what to do; route the original bytes and
    the reason to the dead-letter topic."""

    def __init__(self, reason: str, *, topic: str | None = None, table: str | None = None,
                 column: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.topic = topic
        self.table = table
        self.column = column


class MalformedMessage(DecodeError):
    """Not JSON, not UTF-8, or not a Debezium envelope."""


class UnknownColumnTypes(DecodeError):
    """A schemaless record of a table with no inline schema and no known column types."""


class SchemaMismatch(DecodeError):
    """The record's columns differ from its schema or from the known column types."""


class UndecodableValue(DecodeError):
    """A value that cannot be decoded with its declared type (bad base64, out of range, wrong JSON type)."""


class MissingKey(DecodeError):
    """A row change with no message key and no primary-key columns to take the key from."""


# ------------------------------------------------------------------------------------------------- results

@dataclass(frozen=True, slots=True)
class Skipped:
    """A message that carries no row change. `kind` is one of `SKIP_KINDS`."""

    kind: str
    table: str | None = None


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How the connector was configured, where the message itself does not say.

    `unavailable_placeholder`: the connector's `unavailable.value.placeholder`. `decimal_handling`: the connector's
    `decimal.handling.mode`; only matters for schemaless scale-0 decimals, whose string form is ambiguous.
    `cache_schemas`: compile each distinct schema once (turn off only to measure the difference)."""

    unavailable_placeholder: str = DEFAULT_PLACEHOLDER
    decimal_handling: str = "precise"
    cache_schemas: bool = True
    _placeholders: "_Placeholders" = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_placeholders", _Placeholders(self.unavailable_placeholder))


class _Placeholders:
    """Every shape in which Debezium's PostgreSQL connector sends the unavailable-value placeholder."""

    def __init__(self, text: str) -> None:
        raw = text.encode()
        b64 = base64.b64encode(raw).decode("ascii")
        as_uuid = str(uuid.UUID(bytes=_md5(raw), version=3))  # Java's UUID.nameUUIDFromBytes
        self.strings = frozenset({text, b64, as_uuid})
        self.lists = ([text], [b64], [as_uuid], [b if b < 128 else b - 256 for b in raw])
        self.text = text

    def matches(self, v: Any) -> bool:
        t = type(v)
        if t is str:
            return v in self.strings
        if t is list:
            return bool(v) and v in self.lists
        if t is dict:
            return v.get("value") in self.strings or v == {self.text: self.text}
        return False


def _md5(raw: bytes) -> bytes:
    import hashlib

    return hashlib.md5(raw).digest()  # noqa: S324 - reproduces Debezium's name-based UUID, not for security


DEFAULT_OPTIONS = DecodeOptions()


# ------------------------------------------------------------------------------------------ row decoding

class RowDecoder:
    """Decodes one row image (`before`/`after`) of a known column layout, compiled once per schema."""

    __slots__ = ("fields", "names", "by_name", "pk", "origin")

    def __init__(self, fields: list[tuple[str, FieldDecoder]], pk: tuple[str, ...] = (), origin: str = "") -> None:
        self.fields = tuple((name, conv, expected) for name, (conv, expected) in fields)
        self.names = frozenset(name for name, _ in fields)
        self.by_name = {name: dec for name, dec in fields}
        self.pk = pk
        self.origin = origin

    def decode(self, data: Any, placeholders: _Placeholders | None) -> tuple[dict[str, Any], tuple[str, ...]]:
        """(canonical row, unchanged columns). `placeholders` given only for updates (where TOAST can be unchanged)."""
        if type(data) is not dict:
            raise SchemaMismatch(f"row image is {type(data).__name__}, expected an object of columns")
        if data.keys() != self.names:
            self._mismatch(data)
        out: dict[str, Any] = {}
        unchanged: list[str] = []
        name = ""
        try:
            for name, conv, expected in self.fields:
                v = data[name]
                if v is not None:
                    # Only text, base64, lists and structs can be the placeholder (numbers are never TOASTed).
                    if placeholders is not None and type(v) in _MAYBE_PLACEHOLDER and placeholders.matches(v):
                        unchanged.append(name)
                        continue
                    if conv is not None:
                        v = conv(v)
                    elif type(v) is not expected:
                        raise ValueDecodeError(f"expected {expected.__name__}, got {type(v).__name__}")  # type: ignore[union-attr]
                out[name] = v
        except (ValueError, TypeError, OverflowError, KeyError, binascii.Error) as exc:
            raise UndecodableValue(
                f"column {name!r}: {exc}. The value does not fit the column's type; check the connector's "
                f"decimal/time/binary handling modes against what this decoder expects ({self.origin}).",
                column=name,
            ) from None
        return out, tuple(unchanged)

    def decode_key(self, data: dict[str, Any]) -> dict[str, Any]:
        """Key columns of a schemaless key, decoded with the row's column types."""
        out = {}
        for name, v in data.items():
            dec = self.by_name.get(name)
            if dec is None:
                raise SchemaMismatch(f"key column {name!r} is not a column of the row ({self.origin})", column=name)
            conv, expected = dec
            try:
                out[name] = v if v is None or conv is None else conv(v)
            except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
                raise UndecodableValue(f"key column {name!r}: {exc}", column=name) from None
        return out

    def _mismatch(self, data: dict[str, Any]) -> None:
        extra = sorted(set(data) - self.names)
        missing = sorted(self.names - set(data))
        raise SchemaMismatch(
            f"row columns differ from {self.origin}: unknown {extra}, missing {missing}. If the table changed, "
            "re-export the column types (`claimsctl export-columns`) or enable schemas on the converter.",
        )


_MAYBE_PLACEHOLDER = (str, list, dict)


# --------------------------------------------------------------------------------- compiled schema caches

@dataclass(frozen=True, slots=True)
class _CompiledValueSchema:
    kind: str  # "change" or a Skipped kind
    row: RowDecoder | None


@dataclass(frozen=True, slots=True)
class _CompiledKeySchema:
    fields: tuple[tuple[str, Any, Any], ...]


_value_schemas: dict[bytes, _CompiledValueSchema] = {}
_key_schemas: dict[bytes, _CompiledKeySchema] = {}
_column_decoders: dict[tuple[int, str], tuple[list[ColumnType], RowDecoder]] = {}


def clear_caches() -> None:
    """Forget compiled schemas (tests, benchmarks)."""
    _value_schemas.clear()
    _key_schemas.clear()
    _column_decoders.clear()


def _compile_value_schema(schema: dict[str, Any]) -> _CompiledValueSchema:
    name = schema.get("name") or ""
    fields = {f.get("field"): f for f in schema.get("fields") or []}
    if name == _HEARTBEAT_SCHEMA:
        return _CompiledValueSchema("heartbeat", None)
    if name.endswith("SchemaChangeValue") or "ddl" in fields or "tableChanges" in fields:
        return _CompiledValueSchema("schema_change", None)
    if name.endswith("TransactionMetadataValue") or (_TX_MARKER_FIELDS <= fields.keys() and "op" not in fields):
        return _CompiledValueSchema("transaction_marker", None)
    if "op" not in fields:
        if set(fields) <= {"ts_ms", "ts_us", "ts_ns"}:
            return _CompiledValueSchema("heartbeat", None)
        raise MalformedMessage(f"schema {name or '(unnamed)'} is not a Debezium change envelope (no `op` field). "
                               "Was an SMT such as ExtractNewRecordState applied? Consume the raw topics.")
    image = fields.get("after") or fields.get("before")
    if image is None or image.get("type") != "struct":
        raise MalformedMessage(f"envelope schema {name!r} has no struct `before`/`after` field")
    try:
        row = RowDecoder([(f["field"], connect_field_decoder(f)) for f in image.get("fields") or []],
                         origin=f"inline schema {image.get('name') or name}")
    except ValueDecodeError as exc:
        raise MalformedMessage(f"unusable inline schema: {exc}") from None
    return _CompiledValueSchema("change", row)


def _compile_key_schema(schema: dict[str, Any]) -> _CompiledKeySchema:
    if schema.get("type") != "struct":
        raise MalformedMessage("message key schema is not a struct of key columns")
    try:
        return _CompiledKeySchema(tuple((f["field"], *connect_field_decoder(f)) for f in schema.get("fields") or []))
    except ValueDecodeError as exc:
        raise MalformedMessage(f"unusable key schema: {exc}") from None


def _columns_decoder(columns: ColumnTypes, table: str, options: DecodeOptions) -> RowDecoder:
    cols = columns.get(table)
    if cols is None:
        raise UnknownColumnTypes(
            f"table {table!r} has no inline schema and no known column types. Enable schemas on the converter "
            "(value.converter.schemas.enable=true) or export the column types with `claimsctl export-columns` "
            "and pass them (--columns).", table=table,
        )
    cache_key = (id(cols), options.decimal_handling)
    hit = _column_decoders.get(cache_key)
    if hit is not None and hit[0] is cols:
        return hit[1]
    decoder = RowDecoder(
        [(c.name, pg_type_decoder(c.type, decimal_handling=options.decimal_handling)) for c in cols],
        pk=tuple(c.name for c in cols if c.pk), origin=f"exported column types of {table!r}",
    )
    if options.cache_schemas:
        if len(_column_decoders) >= _CACHE_LIMIT:
            _column_decoders.clear()
        _column_decoders[cache_key] = (cols, decoder)  # holding `cols` keeps its id from being reused
    return decoder


# ----------------------------------------------------------------------------------------------- parsing

def _loads(raw: bytes | str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not valid JSON or not UTF-8 ({exc}); the producer must use a JSON converter")
    except Exception as exc:  # noqa: BLE001 - orjson raises plain errors on some invalid input
        raise MalformedMessage(f"unreadable message ({exc})") from None


def _schema_key(schema: Any) -> bytes:
    return b'{"schema":' + orjson.dumps(schema)


def _split(raw: bytes | str | dict[str, Any], cache: dict[bytes, Any], compile_fn: Any,
           options: DecodeOptions) -> tuple[Any, Any, bool]:
    """(compiled schema or None, payload, had_envelope). Parses only the payload when the schema text is cached."""
    if type(raw) is str:
        raw = raw.encode("utf-8", "surrogatepass")
    if type(raw) is bytes and options.cache_schemas and raw.startswith(b'{"schema":{') and raw.endswith(b"}"):
        idx = raw.find(_PAYLOAD_SEP)
        if idx > 0:
            compiled = cache.get(raw[:idx])
            if compiled is not None:
                try:
                    return compiled, orjson.loads(raw[idx + len(_PAYLOAD_SEP):-1]), True
                except orjson.JSONDecodeError:
                    pass  # unusual layout (extra top-level keys...): take the general path
    doc = raw if type(raw) is dict else _loads(raw)
    if type(doc) is not dict:
        raise MalformedMessage(f"message is a JSON {type(doc).__name__}, expected a Debezium JSON object")
    if "payload" in doc and "schema" in doc:
        schema = doc["schema"]
        if schema is None:
            return None, doc["payload"], True
        if type(schema) is not dict:
            raise MalformedMessage("`schema` is not a Connect schema object")
        key = _schema_key(schema)
        compiled = cache.get(key) if options.cache_schemas else None
        if compiled is None:
            compiled = compile_fn(schema)
            if options.cache_schemas:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[key] = compiled
        return compiled, doc["payload"], True
    return None, doc, False


# ------------------------------------------------------------------------------------------------ decode

def _table_from_topic(topic: str) -> str:
    return topic.rsplit(".", 1)[-1]


def decode_message(
    topic: str,
    key: bytes | str | dict[str, Any] | None,
    value: bytes | str | dict[str, Any] | None,
    columns: ColumnTypes | None = None,
    *,
    options: DecodeOptions = DEFAULT_OPTIONS,
) -> ChangeRecord | Skipped:
    """One Debezium message (key and value as received: bytes, text or parsed JSON) -> a `ChangeRecord`, or
    `Skipped` when it carries no row change. Raises a `DecodeError` subclass for bad input."""
    try:
        return _decode(topic, key, value, columns, options)
    except DecodeError as exc:
        if exc.topic is None:
            exc.topic = topic
        raise


def _decode(topic: str, key: Any, value: Any, columns: ColumnTypes | None,
            options: DecodeOptions) -> ChangeRecord | Skipped:
    if value is None or (type(value) in (bytes, str) and not value):
        return Skipped("tombstone", _table_from_topic(topic))
    if topic.startswith(HEARTBEAT_TOPIC_PREFIX):
        return Skipped("heartbeat")
    compiled, payload, _ = _split(value, _value_schemas, _compile_value_schema, options)
    if payload is None:
        return Skipped("tombstone", _table_from_topic(topic))
    if type(payload) is not dict:
        raise MalformedMessage(f"payload is a JSON {type(payload).__name__}, expected a Debezium envelope object")
    if compiled is not None and compiled.kind != "change":
        return Skipped(compiled.kind, _table_from_topic(topic) if compiled.kind != "heartbeat" else None)
    op = payload.get("op")
    source = payload.get("source")
    if op is None or type(source) is not dict:
        return _skip_without_op(payload, topic)
    table = source.get("table") or _table_from_topic(topic)
    if op not in OPS:
        if op == "m":
            return Skipped("logical_message", table)
        raise MalformedMessage(f"unknown op {op!r}; expected one of {OPS}", table=table)

    try:
        position = SourcePosition(
            lsn=source.get("lsn"),
            tx_id=source.get("txId"),
            ts_ms=int(source.get("ts_ms") or payload.get("ts_ms") or 0),
            snapshot=str(source.get("snapshot") or "false") in _SNAPSHOT_TRUE,
            database=source.get("db") or "",
            schema=source.get("schema") or "",
        )
    except (TypeError, ValueError) as exc:
        raise MalformedMessage(f"envelope `source` block is unreadable ({exc})", table=table) from None

    if op == "t":
        return ChangeRecord(table=table, op="t", key={}, row=None, source=position)

    if compiled is not None:
        decoder = compiled.row
    elif columns is not None:
        decoder = _columns_decoder(columns, table, options)
    else:
        raise UnknownColumnTypes(
            f"schemaless record of table {table!r} and no column types given. Enable schemas on the converter "
            "(value.converter.schemas.enable=true) or export the column types with `claimsctl export-columns` "
            "and pass them (--columns).", table=table,
        )
    pk = decoder.pk or _pk_from_columns(columns, table)

    try:
        if op == "d":
            row = None
            unchanged: tuple[str, ...] = ()
            before = payload.get("before")
            key_values = _decode_key(key, decoder, options)
            if key_values is None:
                if before is None:
                    raise MissingKey(
                        f"delete of {table!r} with no message key and no `before` image; cannot tell which row",
                    )
                before_row, _ = decoder.decode(before, None)
                key_values = _key_from_row(before_row, pk, table)
        else:
            after = payload.get("after")
            if after is None:
                raise MalformedMessage(f"op {op!r} without an `after` image", table=table)
            row, unchanged = decoder.decode(after, options._placeholders if op == "u" else None)
            key_values = _decode_key(key, decoder, options)
            if key_values is None:
                key_values = _key_from_row(row, pk, table)
    except DecodeError as exc:
        exc.table = exc.table or table
        raise
    return ChangeRecord(table=table, op=op, key=key_values, row=row, source=position, unchanged=unchanged)


def _skip_without_op(payload: dict[str, Any], topic: str) -> Skipped:
    keys = payload.keys()
    if keys <= {"ts_ms", "ts_us", "ts_ns"} or (
            "source" in keys and "op" not in keys and "before" not in keys and "after" not in keys
            and "ddl" not in keys and "tableChanges" not in keys):
        return Skipped("heartbeat")
    if "ddl" in keys or "tableChanges" in keys:
        return Skipped("schema_change", _table_from_topic(topic))
    if _TX_MARKER_FIELDS <= keys:
        return Skipped("transaction_marker")
    raise MalformedMessage(
        "not a Debezium change envelope (no `op`/`source`). Was an SMT such as ExtractNewRecordState applied? "
        "Consume the raw Debezium topics.",
    )


def _decode_key(key: Any, decoder: RowDecoder, options: DecodeOptions) -> dict[str, Any] | None:
    if key is None or (type(key) in (bytes, str) and not key):
        return None
    compiled, payload, enveloped = _split(key, _key_schemas, _compile_key_schema, options)
    if payload is None:
        return None
    if type(payload) is not dict:
        raise MalformedMessage(f"message key is a JSON {type(payload).__name__}, expected an object of key columns")
    if compiled is None:
        return decoder.decode_key(payload)
    out = {}
    name = ""
    try:
        for name, conv, expected in compiled.fields:
            v = payload.get(name)
            if v is not None:
                if conv is not None:
                    v = conv(v)
                elif type(v) is not expected:
                    raise ValueDecodeError(f"expected {expected.__name__}, got {type(v).__name__}")
            out[name] = v
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        raise UndecodableValue(f"key column {name!r}: {exc}", column=name) from None
    return out


def _pk_from_columns(columns: ColumnTypes | None, table: str) -> tuple[str, ...]:
    if not columns or table not in columns:
        return ()
    return tuple(c.name for c in columns[table] if c.pk)


def _key_from_row(row: dict[str, Any], pk: tuple[str, ...], table: str) -> dict[str, Any]:
    if not pk:
        raise MissingKey(
            f"change of {table!r} has no message key and no primary-key columns are known. Give the table a primary "
            "key, or pass column types with pk flags (`claimsctl export-columns`).", table=table,
        )
    try:
        return {name: row[name] for name in pk}
    except KeyError as exc:
        raise MissingKey(f"primary-key column {exc.args[0]!r} is missing from the row image", table=table) from None
