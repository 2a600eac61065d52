"""Column-type maps exported from PostgreSQL's catalog: how schemaless CDC records learn their column types.

The JSON form (`claimsctl export-columns` writes it) is, per table of one schema, the columns in table order:
`{"<table>": [{"name": str, "type": <format_type() text, e.g. "numeric(12,2)">, "pk": bool, "not_null": bool}]}`.
Domains are exported as their base type (Debezium sends a domain's values in its base type's encoding); enums and
other user-defined types keep their own name and decode as text.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ColumnType:
    name: str
    type: str  # PostgreSQL format_type() text: "numeric(12,2)", "timestamp with time zone", "text[]", ...
    pk: bool = False
    not_null: bool = False


ColumnTypes = dict[str, list[ColumnType]]  # table name (without schema) -> columns in table order


class ColumnTypesError(ValueError):
    """A column-type map that does not have the documented shape."""


def column_types_from_json(doc: Any) -> ColumnTypes:
    """Parsed JSON `{"<table>": [{"name", "type", "pk", "not_null"}]}` -> `ColumnTypes`."""
    if not isinstance(doc, dict):
        raise ColumnTypesError("column types must be a JSON object of table name -> list of columns")
    out: ColumnTypes = {}
    for table, cols in doc.items():
        if not isinstance(cols, list):
            raise ColumnTypesError(f"table {table!r}: expected a list of columns")
        try:
            out[table] = [
                ColumnType(str(c["name"]), str(c["type"]), bool(c.get("pk", False)), bool(c.get("not_null", False)))
                for c in cols
            ]
        except (KeyError, TypeError) as exc:
            raise ColumnTypesError(f"table {table!r}: each column needs `name` and `type` ({exc})") from None
    return out


def load_column_types(path: str | Path) -> ColumnTypes:
    """Read a column-type map written by `claimsctl export-columns`."""
    return column_types_from_json(json.loads(Path(path).read_text(encoding="utf-8")))


def column_types_to_json(columns: ColumnTypes) -> dict[str, list[dict[str, Any]]]:
    return {table: [asdict(c) for c in cols] for table, cols in columns.items()}


def dump_column_types(columns: ColumnTypes | dict[str, list[dict[str, Any]]], path: str | Path | None = None) -> str:
    """JSON text of a column-type map (stable: tables sorted, columns in table order); written to `path` if given."""
    doc = {t: [c if isinstance(c, dict) else asdict(c) for c in cols] for t, cols in columns.items()}
    text = json.dumps(dict(sorted(doc.items())), indent=2, ensure_ascii=False) + "\n"
    if path is not None:
        Path(path).write_text(text, encoding="utf-8")
    return text


_CATALOG_QUERY = """
SELECT c.relname AS table_name,
       a.attname AS column_name,
       CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod)
            ELSE format_type(a.atttypid, a.atttypmod) END AS column_type,
       COALESCE(a.attnum = ANY (i.indkey), false) AS pk,
       a.attnotnull AS not_null
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum
"""


def export_columns(conninfo: str, schema: str = "public") -> dict[str, list[dict[str, Any]]]:
    """Column types of every table of `schema`, from PostgreSQL's catalog:
    `{"<table>": [{"name", "type", "pk", "not_null"}]}`, columns in table order."""
    import psycopg

    out: dict[str, list[dict[str, Any]]] = {}
    with psycopg.connect(conninfo) as conn:
        for table, name, type_text, pk, not_null in conn.execute(_CATALOG_QUERY, (schema,)):
            out.setdefault(table, []).append({"name": name, "type": type_text, "pk": bool(pk), "not_null": bool(not_null)})
    return out
