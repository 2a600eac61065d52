"""Query results as text: an aligned table (terminal), CSV or JSON (an array of objects)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import orjson
import pyarrow as pa

FORMATS = ("table", "csv", "json")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=_json_default).decode()
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # exact: money stays a decimal string
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def to_csv(result: pa.Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.column_names)
    for row in result.to_pylist():
        writer.writerow([_text(row[c]) for c in result.column_names])
    return out.getvalue()


def to_json(result: pa.Table) -> str:
    return orjson.dumps(result.to_pylist(), default=_json_default, option=orjson.OPT_INDENT_2).decode() + "\n"


def to_rich_table(result: pa.Table):  # noqa: ANN201
    from rich.table import Table

    table = Table(show_lines=False)
    for name in result.column_names:
        table.add_column(name, overflow="fold")
    for row in result.to_pylist():
        table.add_row(*(_text(row[c]) for c in result.column_names))
    return table
