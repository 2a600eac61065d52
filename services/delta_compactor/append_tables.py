"""Append tables of the non-CDC streams: one Delta table per topic under `<lake root>/append/<name>`, one row per
record, idempotent (MERGE on the record's key, insert when not matched: a replayed batch adds nothing).

Column rules (SQL views are built on these names: keep them stable):
- top-level scalar fields -> same-named columns; Avro `timestamp-millis`/`-micros` -> UTC `timestamp`, `date` -> date,
  `decimal` -> decimal(p, s); strings, numbers and booleans as they are;
- nested record fields are flattened with `_` (`fields.claim_number` -> `fields_claim_number`, `exif.gps_lat` ->
  `exif_gps_lat`); a null record gives nulls in all its columns;
- arrays and maps -> one JSON text column `<name>_json` (timestamps in it as ISO-8601 UTC text, dates ISO, decimals as
  JSON numbers, bytes base64);
- plus `_kafka_topic`, `_kafka_partition`, `_kafka_offset` and `_event_date` (DATE, the partition column): the UTC
  date of the record's main timestamp (`AppendTable.event_time`), else of the Kafka record's timestamp (the
  ingestion time, stable when the same record is read again), else today.

Pure: the contracts and pyspark's type classes, no session.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import cache
from typing import Any, Callable

from pyspark.sql import types as T

from claims_shared.contracts.avro import SCHEMA_DIR, decode
from claims_shared.contracts.documents import DOCUMENT_RECORD_SCHEMA, DOCUMENTS_TOPIC
from claims_shared.contracts.fraud import FRAUD_ALERT_SCHEMA, FRAUD_ALERTS_TOPIC
from claims_shared.contracts.objects import EXTRACT_ROW_SCHEMA, EXTRACT_ROWS_TOPIC
from claims_shared.contracts.telematics import (
    DRIVER_SCORE_SCHEMA,
    DRIVER_SCORES_TOPIC,
    EVENT_SCHEMA,
    EVENTS_TOPIC,
    TRIP_SCHEMA,
    TRIPS_TOPIC,
)

KAFKA_META = (
    T.StructField("_kafka_topic", T.StringType()),
    T.StructField("_kafka_partition", T.IntegerType()),
    T.StructField("_kafka_offset", T.LongType()),
    T.StructField("_event_date", T.DateType()),
)
PARTITION_COLUMN = "_event_date"


@dataclass(frozen=True)
class AppendTable:
    """One stream's append table: where it comes from, its key, its main timestamp, its maintenance clustering."""

    name: str
    topic: str
    schema: str  # contract under claims_shared/contracts/schemas, e.g. telematics_trip.v1
    key: tuple[str, ...]
    event_time: str | None  # flattened column holding the record's main timestamp
    zorder: tuple[str, ...]  # main filter columns (`claimsctl maintain`)


APPEND_TABLES: tuple[AppendTable, ...] = (
    AppendTable("telematics_trips", TRIPS_TOPIC, TRIP_SCHEMA, ("trip_id",), "start_ts", ("vehicle_id",)),
    AppendTable("telematics_events", EVENTS_TOPIC, EVENT_SCHEMA, ("event_id",), "start_ts", ("vehicle_id",)),
    AppendTable("driver_scores", DRIVER_SCORES_TOPIC, DRIVER_SCORE_SCHEMA, ("vehicle_id", "trip_id"),
                "last_trip_end_ts", ("vehicle_id",)),
    # A document has no timestamp of its own (EXIF time is camera-local text): partitioned by ingestion date.
    AppendTable("documents", DOCUMENTS_TOPIC, DOCUMENT_RECORD_SCHEMA, ("document_id",), None,
                ("fields_claim_number",)),
    AppendTable("fraud_alerts", FRAUD_ALERTS_TOPIC, FRAUD_ALERT_SCHEMA, ("alert_id",), "detected_at", ("claim_id",)),
    # Invoice rows carry a date, not a timestamp: partitioned by ingestion date like documents.
    AppendTable("extract_rows", EXTRACT_ROWS_TOPIC, EXTRACT_ROW_SCHEMA, ("row_id",), None, ("claim_number",)),
)
APPEND_BY_TOPIC = {t.topic: t for t in APPEND_TABLES}


class AppendRecordError(ValueError):
    """A record that does not decode with its topic's contract, or lacks its key: dead-letter it."""


# ------------------------------------------------------------------------------------------------ columns


@dataclass(frozen=True)
class FlatColumn:
    name: str
    spark_type: T.DataType
    path: tuple[str, ...]  # field names from the record's top level
    as_json: bool = False


def _non_null(avro_type: Any) -> tuple[Any, bool]:
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(branches) != 1:
            raise ValueError(f"unions other than [null, T] are not supported: {avro_type!r}")
        return branches[0], True
    return avro_type, False


def _scalar_type(avro_type: Any) -> T.DataType | None:
    """Spark type of an Avro scalar (None when the type is a record, array or map)."""
    if isinstance(avro_type, str):
        return {
            "string": T.StringType(), "int": T.IntegerType(), "long": T.LongType(), "double": T.DoubleType(),
            "float": T.FloatType(), "boolean": T.BooleanType(), "bytes": T.BinaryType(),
        }.get(avro_type)
    logical = avro_type.get("logicalType")
    if logical in ("timestamp-millis", "timestamp-micros"):
        return T.TimestampType()
    if logical == "date":
        return T.DateType()
    if logical == "decimal":
        return T.DecimalType(avro_type["precision"], avro_type.get("scale", 0))
    if logical == "uuid":
        return T.StringType()
    if avro_type.get("type") == "enum":
        return T.StringType()
    if avro_type.get("type") in ("record", "array", "map"):
        return None
    return _scalar_type(avro_type["type"])


def flatten_fields(fields: list[dict[str, Any]], prefix: tuple[str, ...] = ()) -> list[FlatColumn]:
    """Columns of an Avro record's fields under the rules of the module docstring."""
    columns: list[FlatColumn] = []
    for f in fields:
        avro_type, _ = _non_null(f["type"])
        path = (*prefix, f["name"])
        name = "_".join(path)
        scalar = _scalar_type(avro_type)
        if scalar is not None:
            columns.append(FlatColumn(name, scalar, path))
        elif avro_type.get("type") == "record":
            columns.extend(flatten_fields(avro_type["fields"], path))
        else:  # array or map
            columns.append(FlatColumn(f"{name}_json", T.StringType(), path, as_json=True))
    return columns


@cache
def table_columns(schema: str) -> tuple[FlatColumn, ...]:
    contract = json.loads((SCHEMA_DIR / f"{schema}.avsc").read_text())
    return tuple(flatten_fields(contract["fields"]))


def table_schema(table: AppendTable) -> T.StructType:
    """Spark schema of the append table: the flattened contract, then the Kafka/partition columns."""
    return T.StructType([*(T.StructField(c.name, c.spark_type) for c in table_columns(table.schema)), *KAFKA_META])


# ------------------------------------------------------------------------------------------------ rows


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot put {type(value).__name__} into JSON")


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _get(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = record
    for name in path:
        if value is None:
            return None
        value = value.get(name)
    return value


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return value


def flatten_record(table: AppendTable, record: dict[str, Any], *, topic: str, partition: int, offset: int,
                   kafka_ts_ms: int | None, today: Callable[[], date] = lambda: datetime.now(timezone.utc).date(),
                   ) -> dict[str, Any]:
    """One append-table row (column -> Arrow-ready value) of a decoded record (Avro logical types applied)."""
    row: dict[str, Any] = {}
    for c in table_columns(table.schema):
        value = _get(record, c.path)
        row[c.name] = _json_text(value) if c.as_json else _utc(value)
    missing = [k for k in table.key if row.get(k) in (None, "")]
    if missing:
        raise AppendRecordError(f"{table.name}: key column(s) {missing} empty")
    event_ts = row.get(table.event_time) if table.event_time else None
    if isinstance(event_ts, datetime):
        event_date = event_ts.astimezone(timezone.utc).date()
    elif kafka_ts_ms is not None and kafka_ts_ms > 0:
        event_date = datetime.fromtimestamp(kafka_ts_ms / 1000, tz=timezone.utc).date()
    else:
        event_date = today()
    row.update({"_kafka_topic": topic, "_kafka_partition": partition, "_kafka_offset": offset,
                "_event_date": event_date})
    return row


def decode_append_record(table: AppendTable, payload: bytes | None) -> dict[str, Any]:
    """The record of a message value (schemaless Avro of the table's contract); raises AppendRecordError."""
    if not payload:
        raise AppendRecordError("empty message value")
    try:
        return decode(table.schema, payload)
    except Exception as exc:  # fastavro raises many types on bytes that are not this schema
        raise AppendRecordError(f"not a {table.schema} record: {type(exc).__name__}: {exc}") from exc


def key_of(table: AppendTable, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[k] for k in table.key)


def unique_by_key(table: AppendTable, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """First row of each key (lowest offset first in, as read): a MERGE source must hold one row per key."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        seen.setdefault(key_of(table, row), row)
    return list(seen.values())
