"""Avro wire form of normalized CDC records (`claims.cdc.<table>.v1`): contracts, encoding, decoding.

Contracts: `schemas/cdc/<table>.v1.avsc`, one per table, record `claims.cdc.<table>.Change`: metadata (event_id, op,
table, database, schema, lsn, tx_id, source_ts_ms, snapshot, contract_version, unchanged), `key` and `row` (typed
columns, Avro logical types where they round-trip exactly, every field nullable with default null) and
`row.extra_columns` (column -> canonical JSON text) for columns PostgreSQL gained after the contract was written:
they flow through with no restart and no schema change until the contract's next revision types them. Each column
field carries `pg_type` (PostgreSQL's format_type()) and PII columns `pii` (`token` or `mask`: the field holds a
token or a masked string, never the clear value).

Kafka message key: the primary key as canonical JSON text, UTF-8 (`{"claim_id":"0b6c…"}`, sorted keys, no
spaces; `{}` for a truncate). Not Avro, so its bytes never depend on a schema id: partitioning is the same with or
without a registry, and any tool can read and join on it. The value repeats the key (field `key`), so a sink that
keeps values only still knows which row a delete removed.

Wire format of the value, chosen by `CdcEncoder`:
- without a registry (default): the schemaless Avro body, plus headers `claims-schema: cdc/<table>.v1` and
  `claims-schema-fingerprint: <16 hex>` (the standard CRC-64-AVRO fingerprint of the schema's parsing canonical
  form). Decode with the .avsc shipped in this package:
  `fastavro.schemaless_reader(io.BytesIO(value), fastavro.parse_schema(json.load(open(avsc))))`, after checking the
  fingerprint (`contract_fingerprint(table)`) so a revision you do not have is an error, not garbage. (One value
  plain fastavro cannot turn into a Python object: PostgreSQL's time `24:00:00`, written as 86400000000 µs;
  `decode_change` returns it as `"24:00:00"`.)
- with `CLAIMS_SCHEMA_REGISTRY_URL` set: Confluent wire format (magic byte 0, 4-byte big-endian schema id, body),
  the schema registered under the subject `<topic>-value`; any Confluent deserializer decodes it.

Values are converted from canonical JSON form (see `claims_shared.contracts.cdc`) to Avro primitives by per-table
closures built once (`_TableCodec`), and written against the contract with its logical types stripped: the bytes are
exactly those of the logical types (which only annotate), without fastavro's per-value datetime/Decimal objects.
`decode_change` reverses this into the `ChangeRecord.to_json_dict()` shape. Canonical forms produced by decoding:
decimals with exactly the column's scale, timestamps with 6 fraction digits when the microseconds are not zero and
none otherwise, timestamptz ending in `Z`, json re-parsed. Columns listed in `unchanged` are absent from the decoded
row (the encoder writes null for them).
"""

from __future__ import annotations

import base64
import copy
import io
import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from claims_shared.contracts.avro import SCHEMA_DIR, SCHEMA_HEADER
from claims_shared.contracts.cdc import CONTRACT_VERSION, ChangeRecord, canonical_json, normalized_topic

if TYPE_CHECKING:
    from claims_shared.clients.schema_registry import SchemaRegistryClient
    from claims_shared.settings import PlatformSettings

CDC_SCHEMA_DIR = SCHEMA_DIR / "cdc"
FINGERPRINT_HEADER = "claims-schema-fingerprint"
CONFLUENT_MAGIC = 0
EXTRA_COLUMNS = "extra_columns"


class ContractError(ValueError):
    """A change does not fit its output contract (unknown key column, value out of the column's type).

    Route the source message to the dead-letter topic; if the column's type really changed, publish a new contract
    version (`claims.cdc.<table>.v2`).
    """


class UnknownContractError(ContractError):
    """No contract for this table (or this revision): add `schemas/cdc/<table>.v<N>.avsc` or upgrade claims_shared."""


class WireFormatError(ValueError):
    """Bytes that are not in the expected wire format (e.g. a Confluent frame without magic byte 0)."""


# ---------------------------------------------------------------- contracts


def contract_name(table: str, version: int = CONTRACT_VERSION) -> str:
    """Name of a contract as carried in the `claims-schema` header, e.g. `cdc/claims.v1`."""
    return f"cdc/{table}.v{version}"


def contract_path(table: str, version: int = CONTRACT_VERSION) -> Path:
    return CDC_SCHEMA_DIR / f"{table}.v{version}.avsc"


@lru_cache(maxsize=None)
def contract_json(table: str, version: int = CONTRACT_VERSION) -> dict[str, Any]:
    """The contract as written in its .avsc (plain JSON, with the `pg_type`/`pii` annotations)."""
    path = contract_path(table, version)
    if not path.is_file():
        raise UnknownContractError(f"no output contract for table {table!r} (expected {path})")
    return json.loads(path.read_text())


@lru_cache(maxsize=None)
def load_contract(table: str, version: int = CONTRACT_VERSION) -> Any:
    """Parsed (fastavro) schema of `claims.cdc.<table>.v<version>`, logical types included."""
    return fastavro.parse_schema(copy.deepcopy(contract_json(table, version)))


@lru_cache(maxsize=None)
def contract_fingerprint(table: str, version: int = CONTRACT_VERSION) -> str:
    """CRC-64-AVRO fingerprint (16 hex chars) of the contract's parsing canonical form."""
    return fingerprint(to_parsing_canonical_form(load_contract(table, version)), "CRC-64-AVRO")


def row_fields(table: str, version: int = CONTRACT_VERSION) -> list[dict[str, Any]]:
    """The contract's column fields (`row` record, without `extra_columns`)."""
    return [f for f in _row_record(contract_json(table, version)) if f["name"] != EXTRA_COLUMNS]


def key_fields(table: str, version: int = CONTRACT_VERSION) -> list[dict[str, Any]]:
    return _named_record(contract_json(table, version), "key")


def pii_columns(table: str, version: int = CONTRACT_VERSION) -> dict[str, str]:
    """Column -> PII mode as the contract declares it (`pii` annotation)."""
    return {f["name"]: f["pii"] for f in row_fields(table, version) if "pii" in f}


def _named_record(schema: dict[str, Any], field_name: str) -> list[dict[str, Any]]:
    field = next(f for f in schema["fields"] if f["name"] == field_name)
    branch = next(b for b in field["type"] if isinstance(b, dict) and b.get("type") == "record")
    return branch["fields"]


def _row_record(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return _named_record(schema, "row")


def _strip_logical_types(node: Any) -> Any:
    if isinstance(node, dict):
        if "logicalType" in node and node.get("type") in ("int", "long", "bytes", "string", "fixed"):
            return node["type"]
        return {k: _strip_logical_types(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_strip_logical_types(v) for v in node]
    return node


# ---------------------------------------------------------------- value converters (canonical <-> Avro primitive)

_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ONE_US = timedelta(microseconds=1)
_US_PER_DAY = 86_400_000_000

Converter = Callable[[Any], Any]


def _decimal_codec(precision: int, scale: int) -> tuple[Converter, Converter]:
    limit = 10**precision

    def encode(value: Any) -> bytes:
        try:
            d = Decimal(value) if not isinstance(value, float) else Decimal(repr(value))
        except (InvalidOperation, TypeError, ValueError) as exc:
            raise ContractError(f"not a decimal: {value!r}") from exc
        if not d.is_finite():
            raise ContractError(f"{value!r} does not fit numeric({precision},{scale}): not finite")
        # Exact integer arithmetic: Decimal's context (28 digits) must not round wide numerics.
        sign, digits, exponent = d.as_tuple()
        unscaled = int("".join(map(str, digits)))
        shift = exponent + scale
        if shift >= 0:
            unscaled *= 10**shift
        else:
            unscaled, dropped = divmod(unscaled, 10**-shift)
            if dropped:  # more fraction digits than the scale: never round money silently
                raise ContractError(f"{value!r} does not fit numeric({precision},{scale}) without rounding")
        if sign:
            unscaled = -unscaled
        if abs(unscaled) >= limit:
            raise ContractError(f"{value!r} does not fit numeric({precision},{scale}): too many digits")
        return unscaled.to_bytes(((~unscaled if unscaled < 0 else unscaled).bit_length() // 8) + 1, "big", signed=True)

    def decode(data: bytes) -> str:
        unscaled = int.from_bytes(data, "big", signed=True)
        if scale == 0:
            return str(unscaled)
        sign = "-" if unscaled < 0 else ""
        digits = str(abs(unscaled)).rjust(scale + 1, "0")
        return f"{sign}{digits[:-scale]}.{digits[-scale:]}"

    return encode, decode


def _encode_date(value: str) -> int:
    try:
        return date.fromisoformat(value).toordinal() - _EPOCH_ORDINAL
    except (TypeError, ValueError) as exc:
        raise ContractError(f"not a date YYYY-MM-DD: {value!r}") from exc


def _decode_date(days: int) -> str:
    return date.fromordinal(days + _EPOCH_ORDINAL).isoformat()


def _encode_timestamptz(value: str) -> int:
    try:
        dt = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ContractError(f"not an ISO-8601 timestamp: {value!r}") from exc
    if dt.tzinfo is None:
        raise ContractError(f"timestamptz without zone: {value!r} (canonical form ends in Z)")
    return (dt - _EPOCH_UTC) // _ONE_US


def _decode_timestamptz(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat() + "Z"


def _encode_timestamp(value: str) -> int:
    try:
        dt = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ContractError(f"not an ISO-8601 timestamp: {value!r}") from exc
    if dt.tzinfo is not None:
        raise ContractError(f"timestamp without time zone carries a zone: {value!r}")
    return (dt - _EPOCH) // _ONE_US


def _decode_timestamp(micros: int) -> str:
    return (_EPOCH + timedelta(microseconds=micros)).isoformat()


def _encode_time(value: str) -> int:
    # PostgreSQL's time accepts 24:00:00, which Python's time does not.
    try:
        hours, minutes, rest = value.split(":")
        seconds, _, fraction = rest.partition(".")
        micros = ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000
        if fraction:
            if len(fraction) > 6 or not fraction.isdigit():
                raise ValueError(fraction)
            micros += int(fraction.ljust(6, "0"))
    except (AttributeError, ValueError) as exc:
        raise ContractError(f"not a time HH:MM:SS[.ffffff]: {value!r}") from exc
    if not 0 <= micros <= _US_PER_DAY:
        raise ContractError(f"time out of range: {value!r}")
    return micros


def _decode_time(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    text = f"{h:02d}:{m:02d}:{s:02d}"
    return f"{text}.{fraction:06d}" if fraction else text


def _encode_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ContractError(f"expected text, got {type(value).__name__}: {value!r}")
    return value


def _encode_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(f"expected an integer, got {value!r}")
    return value


def _encode_double(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"expected a number, got {value!r}")
    return float(value)


def _encode_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ContractError(f"expected a boolean, got {value!r}")
    return value


def _identity(value: Any) -> Any:
    return value


def _encode_bytes(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (TypeError, ValueError) as exc:
        raise ContractError(f"bytea must be base64 text: {value!r}") from exc


def _decode_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _codec_for(avro_type: Any) -> tuple[Converter, Converter]:
    """(encode, decode) for one non-null Avro type of a column."""
    if isinstance(avro_type, str):
        return {
            "string": (_encode_string, _identity),
            "int": (_encode_int, _identity),
            "long": (_encode_int, _identity),
            "double": (_encode_double, _identity),
            "float": (_encode_double, _identity),
            "boolean": (_encode_boolean, _identity),
            "bytes": (_encode_bytes, _decode_bytes),
        }[avro_type]
    logical = avro_type.get("logicalType")
    if logical == "decimal":
        return _decimal_codec(avro_type["precision"], avro_type.get("scale", 0))
    if logical == "uuid":
        return (lambda v: _encode_string(v).lower()), _identity
    if logical == "date":
        return _encode_date, _decode_date
    if logical == "timestamp-micros":
        return _encode_timestamptz, _decode_timestamptz
    if logical == "local-timestamp-micros":
        return _encode_timestamp, _decode_timestamp
    if logical == "time-micros":
        return _encode_time, _decode_time
    if avro_type.get("type") == "array":
        items = avro_type["items"]
        nullable = isinstance(items, list)
        enc, dec = _codec_for(_non_null(items) if nullable else items)

        def encode_array(values: Any) -> list[Any]:
            if not isinstance(values, list):
                raise ContractError(f"expected an array, got {values!r}")
            return [None if v is None else enc(v) for v in values]

        def decode_array(values: list[Any]) -> list[Any]:
            return [None if v is None else dec(v) for v in values]

        return encode_array, decode_array
    if logical is None and isinstance(avro_type.get("type"), str):
        return _codec_for(avro_type["type"])
    raise UnknownContractError(f"no converter for Avro type {avro_type!r}")


def _non_null(union: Any) -> Any:
    if isinstance(union, list):
        (branch,) = [b for b in union if b != "null"]
        return branch
    return union


def _column_codec(field: dict[str, Any]) -> tuple[Converter, Converter]:
    if field.get("pg_type") == "jsonb" or field.get("pg_type") == "json":
        return canonical_json, json.loads
    return _codec_for(_non_null(field["type"]))


# ---------------------------------------------------------------- per-table codec


class _TableCodec:
    """Encoder and decoder of one table's contract, with every per-field decision taken once."""

    def __init__(self, table: str, version: int = CONTRACT_VERSION) -> None:
        self.table = table
        self.version = version
        self.topic = normalized_topic(table, version)
        schema = contract_json(table, version)
        self.schema_text = json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
        self.headers = [
            (SCHEMA_HEADER, contract_name(table, version).encode()),
            (FINGERPRINT_HEADER, contract_fingerprint(table, version).encode()),
        ]
        self._wire_schema = fastavro.parse_schema(_strip_logical_types(copy.deepcopy(schema)))
        self._row = [(f["name"], *_column_codec(f)) for f in row_fields(table, version)]
        self._key = [(f["name"], *_column_codec(f)) for f in key_fields(table, version)]
        self._row_names = frozenset(name for name, _, _ in self._row)
        # Union branches named up front (fastavro's tuple notation): otherwise fastavro validates the whole row
        # against each branch to pick one, which costs a third of the encoding time.
        namespace = schema.get("namespace")
        self._row_branch = f"{namespace}.Row" if namespace else "Row"
        self._key_branch = f"{namespace}.Key" if namespace else "Key"
        self._key_names = frozenset(name for name, _, _ in self._key)

    def encode_value(self, record: ChangeRecord) -> bytes:
        if record.table != self.table:
            raise ContractError(f"record of table {record.table!r} given to the {self.table!r} contract")
        source = record.source
        datum = {
            "event_id": record.event_id,
            "op": record.op,
            "table": record.table,
            "database": source.database,
            "schema": source.schema,
            "lsn": source.lsn,
            "tx_id": source.tx_id,
            "source_ts_ms": source.ts_ms,
            "snapshot": source.snapshot,
            "contract_version": record.contract_version,
            "unchanged": list(record.unchanged),
            "key": (self._key_branch, self._encode_key(record.key)) if record.key else None,
            "row": None if record.row is None else (self._row_branch, self._encode_row(record.row)),
        }
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, self._wire_schema, datum)
        except (TypeError, ValueError, OverflowError) as exc:  # a value the converters let through (e.g. lsn > 2**63)
            raise ContractError(f"{self.table}: {exc}") from exc
        return buffer.getvalue()

    def _encode_key(self, key: dict[str, Any]) -> dict[str, Any]:
        if key.keys() != self._key_names:
            raise ContractError(
                f"{self.table}: key columns {sorted(key)} differ from the contract's {sorted(self._key_names)}; "
                "a primary key change needs a new contract version"
            )
        out = {}
        for name, encode, _ in self._key:
            try:
                out[name] = encode(key[name])
            except ContractError as exc:
                raise ContractError(f"{self.table}.{name} (key): {exc}") from None
        return out

    def _encode_row(self, row: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        get = row.get
        for name, encode, _ in self._row:
            value = get(name)
            if value is None:
                out[name] = None
            else:
                try:
                    out[name] = encode(value)
                except ContractError as exc:
                    raise ContractError(f"{self.table}.{name}: {exc}") from None
        if row.keys() <= self._row_names:
            out[EXTRA_COLUMNS] = {}
        else:
            out[EXTRA_COLUMNS] = {name: canonical_json(row[name]) for name in row.keys() - self._row_names}
        return out

    def decode_value(self, body: bytes) -> dict[str, Any]:
        datum = fastavro.schemaless_reader(io.BytesIO(body), self._wire_schema)
        unchanged = datum["unchanged"]
        key = datum["key"]
        row = datum["row"]
        if row is not None:
            decoded = {name: None if row[name] is None else decode(row[name]) for name, _, decode in self._row}
            for name, text in row[EXTRA_COLUMNS].items():
                decoded[name] = json.loads(text)
            for name in unchanged:
                decoded.pop(name, None)
            row = decoded
        return {
            "table": datum["table"],
            "op": datum["op"],
            "key": {} if key is None else {name: decode(key[name]) for name, _, decode in self._key},
            "row": row,
            "unchanged": unchanged,
            "event_id": datum["event_id"],
            "lsn": datum["lsn"],
            "tx_id": datum["tx_id"],
            "source_ts_ms": datum["source_ts_ms"],
            "snapshot": datum["snapshot"],
            "database": datum["database"],
            "schema": datum["schema"],
            "contract_version": datum["contract_version"],
        }


@lru_cache(maxsize=None)
def table_codec(table: str, version: int = CONTRACT_VERSION) -> _TableCodec:
    return _TableCodec(table, version)


# ---------------------------------------------------------------- public encode / decode


def encode_key(record: ChangeRecord) -> bytes:
    """Kafka message key: the primary key as canonical JSON text (UTF-8); `{}` for a truncate."""
    return canonical_json(record.key).encode()


def encode_change(record: ChangeRecord) -> tuple[bytes, bytes]:
    """(key bytes, schemaless Avro value body) of one record; raises ContractError if it does not fit."""
    return encode_key(record), table_codec(record.table, record.contract_version).encode_value(record)


def decode_change(table: str, value_bytes: bytes, version: int = CONTRACT_VERSION) -> dict[str, Any]:
    """Value bytes (schemaless body or Confluent frame) -> the `ChangeRecord.to_json_dict()` shape.

    A Confluent frame is recognised by its magic byte 0 (a body never starts with 0: its first field is the non-empty
    event id); its schema id is not looked up: the body is read with this package's contract.
    """
    if value_bytes[:1] == b"\x00":
        _, value_bytes = confluent_unframe(value_bytes)
    return table_codec(table, version).decode_value(value_bytes)


def confluent_frame(schema_id: int, payload: bytes) -> bytes:
    """Confluent wire format: magic byte 0, schema id (4 bytes, big-endian), Avro body."""
    return b"\x00" + schema_id.to_bytes(4, "big") + payload


def confluent_unframe(data: bytes) -> tuple[int, bytes]:
    """(schema id, Avro body) of a Confluent-framed message."""
    if len(data) < 5 or data[0] != CONFLUENT_MAGIC:
        raise WireFormatError("not in Confluent wire format (expected magic byte 0 and a 4-byte schema id)")
    return int.from_bytes(data[1:5], "big"), data[5:]


class CdcEncoder:
    """`record -> (key, value, headers)` for the normalizer's output, in the configured wire format.

    Without a registry: schemaless Avro body + `claims-schema`/`claims-schema-fingerprint` headers. With one: the
    same headers and a Confluent-framed value; each contract is registered under `<topic>-value` on first use.
    """

    def __init__(self, registry: SchemaRegistryClient | None = None) -> None:
        self.registry = registry
        self._schema_ids: dict[tuple[str, int], int] = {}

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> "CdcEncoder":
        if not settings.schema_registry_url:
            return cls()
        from claims_shared.clients.schema_registry import SchemaRegistryClient

        return cls(SchemaRegistryClient(settings.schema_registry_url))

    def __call__(self, record: ChangeRecord) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        codec = table_codec(record.table, record.contract_version)
        body = codec.encode_value(record)
        if self.registry is not None:
            body = confluent_frame(self.schema_id(record.table, record.contract_version), body)
        return encode_key(record), body, list(codec.headers)

    def schema_id(self, table: str, version: int = CONTRACT_VERSION) -> int:
        """Registry id of a contract (registered on first use; raises if no registry is configured)."""
        if self.registry is None:
            raise RuntimeError("no schema registry configured (CLAIMS_SCHEMA_REGISTRY_URL)")
        cached = self._schema_ids.get((table, version))
        if cached is None:
            codec = table_codec(table, version)
            cached = self.registry.register(f"{codec.topic}-value", codec.schema_text)
            self._schema_ids[(table, version)] = cached
        return cached
