"""Delta table layouts of one CDC entity, derived from its Avro contract, and canonical values -> Arrow columns.

Two tables per entity (`LakeLayout`; plus `append/<name>` for the other streams, see append_tables.py): `current/<table>` (SCD1: one row per primary key, deletes kept as tombstones
with `_deleted = true` so a late or replayed older change can never bring a row back) and `history/<table>` (SCD2:
one row per change). Plus `_compactor_offsets` (topic, partition, next_offset).

Column types follow the contract: decimals keep precision and scale, `timestamptz` is a Spark `timestamp` (UTC
instant), `timestamp` without zone a `timestamp_ntz`, `date` a date, `time` its canonical text (Delta has no time
type), json/jsonb its canonical JSON text, arrays arrays, bytea binary. Columns PostgreSQL gained after the
contract travel in `_extra_columns` (column -> canonical JSON text) until the next contract version types them.
Metadata columns start with `_`.

Pure: pyarrow and pyspark's type classes only (no session).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Callable

import pyarrow as pa
from pyspark.sql import types as T

from claims_shared.contracts.cdc import canonical_json
from claims_shared.contracts.cdc_avro import key_fields, row_fields

SOURCE_POS_TYPE = T.DecimalType(38, 0)
EXTRA_COLUMNS = "_extra_columns"

# Metadata columns of the current (SCD1) table, in order after the entity's columns.
CURRENT_META = (
    T.StructField(EXTRA_COLUMNS, T.MapType(T.StringType(), T.StringType())),
    T.StructField("_deleted", T.BooleanType()),
    T.StructField("_op", T.StringType()),
    T.StructField("_event_id", T.StringType()),
    T.StructField("_source_pos", SOURCE_POS_TYPE),
    T.StructField("_source_ts", T.TimestampType()),
)
# Extra columns of the SCD1 MERGE source (not stored).
CURRENT_SOURCE_META = (
    T.StructField("_keep_target", T.ArrayType(T.StringType())),
    T.StructField("_filled_from", T.MapType(T.StringType(), SOURCE_POS_TYPE)),
)
HISTORY_META = (
    T.StructField(EXTRA_COLUMNS, T.MapType(T.StringType(), T.StringType())),
    T.StructField("_op", T.StringType()),
    T.StructField("_event_id", T.StringType()),
    T.StructField("_source_pos", SOURCE_POS_TYPE),
    T.StructField("_valid_from", T.TimestampType()),
    T.StructField("_valid_to", T.TimestampType()),
    T.StructField("_is_current", T.BooleanType()),
    T.StructField("_unchanged", T.ArrayType(T.StringType())),
)
OFFSETS_SCHEMA = T.StructType([
    T.StructField("topic", T.StringType()),
    T.StructField("partition", T.IntegerType()),
    T.StructField("next_offset", T.LongType()),
    T.StructField("updated_at", T.TimestampType()),
])


@dataclass(frozen=True)
class LakeLayout:
    """Where the compactor's tables live under one root (local path or s3a:// URI)."""

    root: str

    def current(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/current/{table}"

    def history(self, table: str) -> str:
        return f"{self.root.rstrip('/')}/history/{table}"

    def offsets(self) -> str:
        return f"{self.root.rstrip('/')}/_compactor_offsets"

    def append(self, name: str) -> str:
        """Append-only table of a non-CDC stream (services/delta_compactor/append_tables.py)."""
        return f"{self.root.rstrip('/')}/append/{name}"


Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class EntityColumns:
    """The entity's columns as Spark fields, with the canonical -> Arrow-ready value converter of each."""

    table: str
    key_columns: tuple[str, ...]
    fields: tuple[T.StructField, ...]
    converters: dict[str, Converter]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def data_columns(self) -> tuple[str, ...]:
        return tuple(n for n in self.names if n not in self.key_columns)

    def current_schema(self, *, with_source_meta: bool = False) -> T.StructType:
        extra = CURRENT_SOURCE_META if with_source_meta else ()
        return T.StructType([*self.fields, *CURRENT_META, *extra])

    def history_schema(self) -> T.StructType:
        return T.StructType([*self.fields, *HISTORY_META])

    def split_values(self, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str] | None]:
        """(typed column values, `_extra_columns` map or None) from a canonical row."""
        typed = {}
        for name in self.names:
            value = values.get(name)
            typed[name] = None if value is None else self.converters[name](value)
        extras = {k: canonical_json(v) for k, v in values.items() if k not in self.converters}
        return typed, (extras or None)


def entity_columns(table: str) -> EntityColumns:
    """Columns of `table` from its contract `claims.cdc.<table>.v1`."""
    fields: list[T.StructField] = []
    converters: dict[str, Converter] = {}
    keys = tuple(f["name"] for f in key_fields(table))
    for f in row_fields(table):
        spark_type, convert = _column_type(f)
        fields.append(T.StructField(f["name"], spark_type))
        converters[f["name"]] = convert
    return EntityColumns(table, keys, tuple(fields), converters)


def _non_null(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        (branch,) = [b for b in avro_type if b != "null"]
        return branch
    return avro_type


def _column_type(field: dict[str, Any]) -> tuple[T.DataType, Converter]:
    if field.get("pg_type") in ("json", "jsonb"):
        return T.StringType(), canonical_json
    return _avro_type(_non_null(field["type"]))


def _avro_type(avro_type: Any) -> tuple[T.DataType, Converter]:
    if isinstance(avro_type, str):
        simple = {
            "string": (T.StringType(), str),
            "int": (T.IntegerType(), int),
            "long": (T.LongType(), int),
            "double": (T.DoubleType(), _float),
            "float": (T.FloatType(), _float),
            "boolean": (T.BooleanType(), bool),
            "bytes": (T.BinaryType(), base64.b64decode),
        }
        if avro_type not in simple:
            raise ValueError(f"no lake type for Avro type {avro_type!r}")
        return simple[avro_type]
    logical = avro_type.get("logicalType")
    if logical == "decimal":
        return T.DecimalType(avro_type["precision"], avro_type.get("scale", 0)), Decimal
    if logical == "uuid":
        return T.StringType(), str
    if logical == "date":
        return T.DateType(), date.fromisoformat
    if logical == "timestamp-micros":
        return T.TimestampType(), _timestamptz
    if logical == "local-timestamp-micros":
        return T.TimestampNTZType(), datetime.fromisoformat
    if logical == "time-micros":
        return T.StringType(), str
    if avro_type.get("type") == "array":
        element, convert = _avro_type(_non_null(avro_type["items"]))
        return T.ArrayType(element), lambda values: [None if v is None else convert(v) for v in values]
    if logical is None and isinstance(avro_type.get("type"), str):
        return _avro_type(avro_type["type"])
    raise ValueError(f"no lake type for Avro type {avro_type!r}")


def _float(value: Any) -> float:
    return float(value)  # canonical non-finite floats are the strings "NaN", "Infinity", "-Infinity"


def _timestamptz(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(timezone.utc)


def ms_to_datetime(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)


# ------------------------------------------------------------------------------------------------ Spark -> Arrow types


def arrow_type(spark_type: T.DataType) -> pa.DataType:
    """Arrow type for a Spark type used in these tables."""
    if isinstance(spark_type, T.StringType):
        return pa.string()
    if isinstance(spark_type, T.IntegerType):
        return pa.int32()
    if isinstance(spark_type, T.LongType):
        return pa.int64()
    if isinstance(spark_type, T.DoubleType):
        return pa.float64()
    if isinstance(spark_type, T.FloatType):
        return pa.float32()
    if isinstance(spark_type, T.BooleanType):
        return pa.bool_()
    if isinstance(spark_type, T.BinaryType):
        return pa.binary()
    if isinstance(spark_type, T.DecimalType):
        return pa.decimal128(spark_type.precision, spark_type.scale)
    if isinstance(spark_type, T.DateType):
        return pa.date32()
    if isinstance(spark_type, T.TimestampNTZType):
        return pa.timestamp("us")
    if isinstance(spark_type, T.TimestampType):
        return pa.timestamp("us", tz="UTC")
    if isinstance(spark_type, T.ArrayType):
        return pa.list_(arrow_type(spark_type.elementType))
    if isinstance(spark_type, T.MapType):
        return pa.map_(arrow_type(spark_type.keyType), arrow_type(spark_type.valueType))
    raise ValueError(f"no Arrow type for {spark_type!r}")


def arrow_table(rows: list[dict[str, Any]], schema: T.StructType) -> pa.Table:
    """Arrow table of `rows` (column -> Arrow-ready Python value) with exactly the Spark schema's columns."""
    columns = {}
    for f in schema.fields:
        values = [row.get(f.name) for row in rows]
        if isinstance(f.dataType, T.MapType):
            values = [None if v is None else list(v.items()) for v in values]
        columns[f.name] = pa.array(values, type=arrow_type(f.dataType))
    return pa.table(columns)
