"""Trino SQL -> DuckDB SQL: sqlglot's transpiler plus a short list of rewrites for the gaps that matter here.

The view files and dashboard questions are written once, in Trino SQL (what production serves); the embedded engine
runs them on DuckDB. sqlglot handles most of the translation; `REWRITES` fixes what it gets wrong or cannot map.
Each rewrite is tested (tests/unit/test_lake_sql_dialect.py) against DuckDB for the result Trino gives. Keep the
list short: prefer writing views in the common subset of both dialects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import sqlglot
from sqlglot import exp

from claimsctl.lake_sql.exceptions import LakeSQLError


@dataclass(frozen=True)
class Rewrite:
    """One AST rewrite: `why` says which Trino behaviour DuckDB lacks."""

    name: str
    why: str
    apply: Callable[[exp.Expression], exp.Expression]


# Joda-time (Trino format_datetime) -> strftime (DuckDB); longest tokens first.
_JODA_TO_STRFTIME = (
    ("yyyy", "%Y"), ("YYYY", "%Y"), ("yy", "%y"), ("MMMM", "%B"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"),
    ("HH", "%H"), ("hh", "%I"), ("mm", "%M"), ("ss", "%S"), ("SSS", "%g"), ("EEEE", "%A"), ("EEE", "%a"),
    ("a", "%p"), ("ZZ", "%z"), ("Z", "%z"), ("M", "%-m"), ("d", "%-d"), ("H", "%-H"),
)
_JODA_TOKEN = re.compile("|".join(re.escape(j) for j, _ in _JODA_TO_STRFTIME) + r"|'[^']*'")


def joda_to_strftime(pattern: str) -> str:
    """strftime pattern for a Joda-time pattern (quoted literals kept, `%` escaped)."""
    mapping = dict(_JODA_TO_STRFTIME)

    def token(m: re.Match[str]) -> str:
        text = m.group(0)
        if text.startswith("'"):
            return text[1:-1].replace("%", "%%") or "'"
        return mapping[text]

    out, pos = [], 0
    for m in _JODA_TOKEN.finditer(pattern):
        out.append(pattern[pos:m.start()].replace("%", "%%"))
        out.append(token(m))
        pos = m.end()
    out.append(pattern[pos:].replace("%", "%%"))
    return "".join(out)


def _format_datetime(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.lower() == "format_datetime" and len(node.expressions) == 2:
        value, pattern = node.expressions
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            return exp.Anonymous(this="STRFTIME", expressions=[value, exp.Literal.string(joda_to_strftime(pattern.this))])
    return node


def _date_diff_full_units(node: exp.Expression) -> exp.Expression:
    # Trino counts complete units elapsed (23:00 -> 01:00 next day is 0 days); DuckDB's date_diff counts unit
    # boundaries crossed (1 day). DuckDB's date_sub counts complete units, like Trino.
    if isinstance(node, exp.DateDiff):
        unit = node.args.get("unit")
        unit_name = unit.name if unit is not None else "day"
        return exp.Anonymous(this="DATE_SUB", expressions=[
            exp.Literal.string(unit_name.lower()), node.expression, node.this])
    return node


def _date_trunc_of_date(node: exp.Expression) -> exp.Expression:
    # Trino: date_trunc(unit, DATE) is a DATE; DuckDB returns a TIMESTAMP. Only visible when the argument is
    # known to be a date (a CAST to date, a DATE literal or date(...)): write that explicitly in views.
    if isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)):
        arg = node.this
        is_date = (isinstance(arg, exp.Cast) and arg.to.is_type(exp.DataType.Type.DATE)) or isinstance(
            arg, (exp.Date, exp.TsOrDsToDate, exp.DateStrToDate))
        if is_date and not isinstance(node.parent, exp.Cast):
            return exp.Cast(this=node.copy(), to=exp.DataType.build("DATE"))
    return node


def _at_timezone(node: exp.Expression) -> exp.Expression:
    # Trino at_timezone(ts, zone) shows an instant in another zone; DuckDB's timezone(zone, ts) gives that zone's
    # wall-clock time (same digits, the zone itself dropped).
    if isinstance(node, exp.Anonymous) and node.name.lower() == "at_timezone" and len(node.expressions) == 2:
        value, zone = node.expressions
        return exp.Anonymous(this="TIMEZONE", expressions=[zone, value])
    return node


def _count_if_bigint(node: exp.Expression) -> exp.Expression:
    # Trino's count_if is a bigint; DuckDB's is a HUGEINT (int128), which Arrow turns into decimal(38, 0).
    if isinstance(node, exp.CountIf) and not isinstance(node.parent, exp.Cast):
        return exp.Cast(this=node.copy(), to=exp.DataType.build("BIGINT"))
    return node


REWRITES: tuple[Rewrite, ...] = (
    Rewrite("format_datetime", "DuckDB has no format_datetime (Joda patterns): strftime with a converted pattern",
            _format_datetime),
    Rewrite("date_diff_full_units", "Trino's date_diff counts complete units, DuckDB's counts boundaries: date_sub",
            _date_diff_full_units),
    Rewrite("date_trunc_of_date", "date_trunc of a DATE is a DATE in Trino, a TIMESTAMP in DuckDB: cast back",
            _date_trunc_of_date),
    Rewrite("at_timezone", "DuckDB has no at_timezone: timezone(zone, ts)", _at_timezone),
    Rewrite("count_if_bigint", "count_if is a bigint in Trino, a HUGEINT (decimal in Arrow) in DuckDB: cast",
            _count_if_bigint),
)


def trino_to_duckdb(sql: str) -> list[str]:
    """DuckDB statements for the Trino statements in `sql` (several allowed, `;`-separated)."""
    try:
        statements = sqlglot.parse(sql, read="trino")
    except sqlglot.errors.ParseError as exc:
        raise LakeSQLError(f"cannot parse as Trino SQL: {exc}") from exc
    out = []
    for statement in statements:
        if statement is None:
            continue
        for rewrite in REWRITES:
            statement = statement.transform(rewrite.apply)
        out.append(statement.sql(dialect="duckdb"))
    return out
