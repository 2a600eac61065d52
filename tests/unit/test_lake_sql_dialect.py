"""Trino -> DuckDB: each rewrite gives Trino's answer on DuckDB, and every view and dashboard question transpiles."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from claimsctl.dashboards import load_dashboards
from claimsctl.lake_sql.dialect import REWRITES, joda_to_strftime, trino_to_duckdb
from claimsctl.lake_sql.views import load_views


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    return connection


def run(con: duckdb.DuckDBPyConnection, trino_sql: str):
    (statement,) = trino_to_duckdb(trino_sql)
    return con.sql(statement).fetchone()[0]


def test_format_datetime_with_a_joda_pattern_formats_like_trino(con) -> None:
    sql = "SELECT format_datetime(TIMESTAMP '2026-03-04 07:05:09 UTC', 'yyyy-MM-dd''T''HH:mm:ss')"
    assert run(con, sql) == "2026-03-04T07:05:09"


def test_joda_patterns_keep_quoted_text_and_escape_percent() -> None:
    assert joda_to_strftime("dd/MM/yyyy 'at' HH:mm 100%") == "%d/%m/%Y at %H:%M 100%%"


def test_date_diff_counts_complete_units_like_trino(con) -> None:
    # 23:00 -> 01:00 the next day: Trino says 0 days (DuckDB's date_diff would say 1).
    sql = "SELECT date_diff('day', TIMESTAMP '2026-03-04 23:00:00 UTC', TIMESTAMP '2026-03-05 01:00:00 UTC')"
    assert run(con, sql) == 0
    sql = "SELECT date_diff('hour', TIMESTAMP '2026-03-05 01:00:00 UTC', TIMESTAMP '2026-03-04 23:00:00 UTC')"
    assert run(con, sql) == -2


def test_date_trunc_of_a_date_stays_a_date(con) -> None:
    assert run(con, "SELECT date_trunc('week', CAST('2026-03-05' AS date))") == date(2026, 3, 2)


def test_at_timezone_shows_wall_clock_time_of_the_zone(con) -> None:
    value = run(con, "SELECT at_timezone(TIMESTAMP '2026-07-01 12:00:00 UTC', 'Europe/Paris')")
    assert (value.hour, value.minute) == (14, 0)


def test_every_rewrite_says_why() -> None:
    assert len({r.name for r in REWRITES}) == len(REWRITES)
    assert all(r.why for r in REWRITES)


@pytest.mark.parametrize("view", load_views(), ids=lambda v: v.name)
def test_every_view_file_transpiles_to_one_duckdb_statement(view) -> None:
    (statement,) = trino_to_duckdb(view.sql)
    assert f"CREATE OR REPLACE VIEW {view.name.upper()} AS" in statement.upper()


@pytest.mark.parametrize("question", [q for d in load_dashboards() for q in d.questions], ids=lambda q: q.name)
def test_every_dashboard_question_transpiles(question) -> None:
    assert len(trino_to_duckdb(question.sql)) == 1


def test_count_if_is_a_bigint_like_trino(con) -> None:
    (statement,) = trino_to_duckdb("SELECT count_if(x > 1) AS n FROM (VALUES (1), (2), (3)) AS t(x)")
    result = con.sql(statement)
    assert result.types == ["BIGINT"] and result.fetchone() == (2,)
