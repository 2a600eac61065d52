"""Every Delta table of the claims lake: where it lives under the lake root, its SQL name and its Arrow schema.

Three layouts under one root (local path or s3:// URI):
- `current/<table>`: SCD1 state of a CDC entity, deletes kept as `_deleted` tombstones (services/delta_compactor).
- `history/<table>`: SCD2 versions of a CDC entity (`_valid_from`, `_valid_to`, `_is_current`, `_op`).
- `append/<name>`: insert-only event tables from the Avro contracts, flattened by fixed rules (`append_schema`).

SQL names are `<schema>.<table>` with schemas `lake_current`, `lake_history` and `lake_append`, identical in Trino
(catalog `delta`) and in the embedded engine, so the view files under infra/trino/views run unchanged in both.
Pure: no I/O beyond reading the contract files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pyarrow as pa

from claims_shared.contracts.avro import SCHEMA_DIR

# CDC entities with current + history tables, in the order of infra/postgres/schema.sql.
CDC_TABLES = (
    "customers", "policies", "vehicles", "drivers", "adjusters", "claims", "claim_payments", "adjuster_assignments",
)
# Append tables: name -> Avro contract (claims_shared/contracts/schemas/<contract>.avsc), or None when the table's
# columns are not contract-derived yet (extract_rows: built in parallel, may not exist).
APPEND_TABLES: dict[str, str | None] = {
    "telematics_trips": "telematics_trip.v1",
    "telematics_events": "telematics_event.v1",
    "driver_scores": "telematics_driver_score.v1",
    "documents": "document_record.v1",
    "fraud_alerts": "fraud_alert.v1",
    "extract_rows": None,
}
# Tables whose absence is normal (not yet produced by any writer): no empty stand-in, no Trino registration failure.
OPTIONAL_TABLES = frozenset({"lake_append.extract_rows"})

KAFKA_COLUMNS = (
    ("_kafka_topic", pa.string()),
    ("_kafka_partition", pa.int32()),
    ("_kafka_offset", pa.int64()),
    ("_event_date", pa.date32()),
)
SCHEMAS = ("lake_current", "lake_history", "lake_append")


@dataclass(frozen=True)
class LakeTable:
    """One Delta table: `layer` is current, history or append."""

    layer: str
    name: str

    @property
    def schema(self) -> str:
        return f"lake_{self.layer}"

    @property
    def sql_name(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def optional(self) -> bool:
        return self.sql_name in OPTIONAL_TABLES

    def location(self, root: str) -> str:
        return f"{root.rstrip('/')}/{self.layer}/{self.name}"

    def arrow_schema(self) -> pa.Schema | None:
        """Columns as written by the lake's writers; None when not known (extract_rows)."""
        if self.layer == "append":
            contract = APPEND_TABLES[self.name]
            return None if contract is None else append_schema(contract)
        return _cdc_schema(self.layer, self.name)


def lake_tables() -> list[LakeTable]:
    """Every table of the lake, current tables first."""
    return ([LakeTable("current", t) for t in CDC_TABLES] + [LakeTable("history", t) for t in CDC_TABLES]
            + [LakeTable("append", t) for t in APPEND_TABLES])


@lru_cache(maxsize=None)
def _cdc_schema(layer: str, table: str) -> pa.Schema:
    # Imported here: lake_schema pulls pyspark's type classes, only needed when a schema is asked for.
    from services.delta_compactor.lake_schema import arrow_type, entity_columns

    columns = entity_columns(table)
    spark_schema = columns.current_schema() if layer == "current" else columns.history_schema()
    return pa.schema([pa.field(f.name, arrow_type(f.dataType)) for f in spark_schema.fields])


# ------------------------------------------------------------------------------------------------ append tables


@lru_cache(maxsize=None)
def append_schema(contract: str) -> pa.Schema:
    """Columns of the append table fed by Avro contract `contract`: scalars keep their name, nested records are
    flattened with `_`, arrays and maps become JSON text `<name>_json`, then the Kafka position columns."""
    record = json.loads((SCHEMA_DIR / f"{contract}.avsc").read_text())
    fields = list(_flatten(record["fields"], prefix=""))
    return pa.schema([*fields, *(pa.field(n, t) for n, t in KAFKA_COLUMNS)])


def _flatten(fields: list[dict[str, Any]], prefix: str):
    for f in fields:
        name = prefix + f["name"]
        avro_type = _non_null(f["type"])
        if isinstance(avro_type, dict) and avro_type.get("type") == "record":
            yield from _flatten(avro_type["fields"], prefix=f"{name}_")
        elif isinstance(avro_type, dict) and avro_type.get("type") in ("array", "map"):
            yield pa.field(f"{name}_json", pa.string())
        else:
            yield pa.field(name, _scalar_arrow_type(avro_type))


def _non_null(avro_type: Any) -> Any:
    if isinstance(avro_type, list):
        branches = [b for b in avro_type if b != "null"]
        if len(branches) != 1:
            raise ValueError(f"no lake column for union {avro_type!r}")
        return branches[0]
    return avro_type


def _scalar_arrow_type(avro_type: Any) -> pa.DataType:
    if isinstance(avro_type, str):
        simple = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "double": pa.float64(),
                  "float": pa.float32(), "boolean": pa.bool_(), "bytes": pa.binary()}
        if avro_type not in simple:
            raise ValueError(f"no lake column for Avro type {avro_type!r}")
        return simple[avro_type]
    logical = avro_type.get("logicalType")
    if logical in ("timestamp-millis", "timestamp-micros"):
        return pa.timestamp("us", tz="UTC")
    if logical == "date":
        return pa.date32()
    if logical == "decimal":
        return pa.decimal128(avro_type["precision"], avro_type.get("scale", 0))
    if avro_type.get("type") == "enum":
        return pa.string()
    return _scalar_arrow_type(avro_type["type"])
