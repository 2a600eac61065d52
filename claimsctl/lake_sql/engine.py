"""The embedded lake SQL engine: DuckDB with its delta extension over the lake's Delta tables, serving the same
Trino views as production (infra/trino/views), transpiled by `dialect.trino_to_duckdb`.

    from claimsctl.lake_sql import connect
    lake = connect("/tmp/lake")                       # or "s3://claims-lake", default: settings (CLAIMS_LAKE_URI)
    lake.df("SELECT * FROM gold.claim_360")          # pandas; .arrow(...) for Arrow
    connect(as_of="2026-05-01T12:00:00Z")            # current tables as they were then

Every lake table is registered as a view `lake_<layer>.<table>` first (a table not written yet becomes an empty
view with its contract's columns), then every view file in dependency order. `as_of` time-travels the current
(SCD1) tables only: history tables already hold every version, append tables every event.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
import pyarrow as pa

from claims_shared.settings import PlatformSettings, get_settings
from claimsctl.lake_sql.dialect import trino_to_duckdb
from claimsctl.lake_sql.exceptions import LakeNotFoundError, LakeSQLError, TimeTravelError
from claimsctl.lake_sql.tables import SCHEMAS, LakeTable, lake_tables
from claimsctl.lake_sql.views import VIEW_SCHEMAS, VIEWS_DIR, load_views

AsOf = int | datetime | str | None


@dataclass
class RegisteredTable:
    """How one lake table was registered: `version` is the Delta version read (None: latest); `empty` when it is
    served as an empty view (not written yet, or not yet existing at the `as_of` time)."""

    table: LakeTable
    location: str
    found: bool
    version: int | None = None
    empty: bool = False


@dataclass
class LakeSQL:
    """A DuckDB connection with the lake's tables and serving views registered. Use `connect()`."""

    con: duckdb.DuckDBPyConnection
    root: str
    as_of: AsOf
    tables: list[RegisteredTable] = field(default_factory=list)
    views: list[str] = field(default_factory=list)
    storage_options: dict[str, str] | None = None

    @property
    def missing_tables(self) -> list[str]:
        """Expected tables not in the lake (served as empty views); optional tables not listed."""
        return [t.table.sql_name for t in self.tables if not t.found and not t.table.optional]

    def arrow(self, sql: str, *, dialect: str = "trino") -> pa.Table:
        """Result of the last statement of `sql` (Trino SQL unless dialect="duckdb") as an Arrow table."""
        statements = trino_to_duckdb(sql) if dialect == "trino" else [sql]
        if not statements:
            raise LakeSQLError("no SQL statement given")
        try:
            for statement in statements[:-1]:
                self.con.execute(statement)
            result = self.con.sql(statements[-1])
            if result is None:
                return pa.table({})
            return result.to_arrow_table()
        except duckdb.Error as exc:
            raise LakeSQLError(f"{exc}\n  (as run on DuckDB: {statements[-1]})") from exc

    def df(self, sql: str, *, dialect: str = "trino"):  # noqa: ANN201 (pandas is optional at type level)
        """Result as a pandas DataFrame (notebooks)."""
        return self.arrow(sql, dialect=dialect).to_pandas()

    def rows(self, sql: str, *, dialect: str = "trino") -> list[dict[str, Any]]:
        """Result as a list of dicts."""
        return self.arrow(sql, dialect=dialect).to_pylist()

    def versions(self, table: str) -> list[dict[str, Any]]:
        """Delta versions of lake table `table` (e.g. "lake_current.claims"), oldest first: version, committed_at
        (UTC), operation. What `as_of` can travel to."""
        from deltalake import DeltaTable

        (registered,) = [t for t in self.tables if t.table.sql_name == table] or [None]
        if registered is None or not registered.found:
            raise LakeSQLError(f"{table} is not a table of this lake (see .tables)")
        history = DeltaTable(registered.location, storage_options=self.storage_options).history()
        return sorted(({"version": h["version"], "operation": h.get("operation"),
                        "committed_at": datetime.fromtimestamp(h["timestamp"] / 1000, tz=timezone.utc)}
                       for h in history), key=lambda h: h["version"])

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "LakeSQL":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_lake(settings: PlatformSettings | None = None) -> str:
    """The lake root from settings: CLAIMS_LAKE_URI, else s3://<CLAIMS_LAKE_BUCKET>."""
    settings = settings or get_settings()
    return settings.lake_uri or f"s3://{settings.lake_bucket}"


def connect(lake: str | os.PathLike[str] | None = None, *, as_of: AsOf = None,
            settings: PlatformSettings | None = None, views_dir: Path = VIEWS_DIR) -> LakeSQL:
    """Engine over the lake at `lake` (local path or s3:// URI; default `default_lake()`), with every table and view
    registered. `as_of`: a Delta version (int) or a time (datetime or ISO-8601 text) for the current tables."""
    settings = settings or get_settings()
    root = str(lake) if lake is not None else default_lake(settings)
    is_s3 = root.startswith(("s3://", "s3a://"))
    if is_s3:
        root = "s3://" + root.split("://", 1)[1]
    else:
        root = str(Path(root).expanduser().resolve())
    as_of = parse_as_of(as_of)

    con = duckdb.connect()
    # Trino's session zone for the views' date casts and day boundaries: UTC, as the lake stores instants.
    con.execute("SET TimeZone = 'UTC'")
    _load_extensions(con, s3=is_s3)
    if is_s3:
        _create_s3_secret(con, settings)
    storage_options = _storage_options(settings) if is_s3 else None
    engine = LakeSQL(con, root, as_of, storage_options=storage_options)
    for schema in (*SCHEMAS, *VIEW_SCHEMAS):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for table in lake_tables():
        engine.tables.append(_register_table(con, table, root, as_of, storage_options))
    if all(not t.found for t in engine.tables):
        con.close()
        raise LakeNotFoundError(
            f"no Delta table of the claims lake under {root} (expected e.g. {lake_tables()[0].location(root)}): "
            "check --lake / CLAIMS_LAKE_URI, and for S3 the CLAIMS_S3_* settings")
    for view in load_views(views_dir):
        (statement,) = trino_to_duckdb(view.sql)
        try:
            con.execute(statement)
        except duckdb.Error as exc:
            con.close()
            raise LakeSQLError(f"view {view.name} ({view.path}) does not run on the embedded engine: {exc}") from exc
        engine.views.append(view.name)
    return engine


# ------------------------------------------------------------------------------------------------ time travel


def parse_as_of(value: AsOf) -> int | datetime | None:
    """A Delta version (int) or an aware UTC datetime, from the `--as-of` forms: 3, "3", ISO-8601 time or date."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TimeTravelError(f"--as-of {text!r}: give a Delta version (e.g. 3) or an ISO-8601 time "
                              "(e.g. 2026-05-01T12:00:00Z)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def version_at(location: str, moment: datetime, storage_options: dict[str, str] | None) -> int | None:
    """Latest Delta version of the table at `location` committed at or before `moment`; None if it did not exist."""
    from deltalake import DeltaTable

    history = DeltaTable(location, storage_options=storage_options).history()
    cutoff_ms = moment.timestamp() * 1000
    versions = [h["version"] for h in history if h.get("timestamp") is not None and h["timestamp"] <= cutoff_ms]
    return max(versions) if versions else None


# ------------------------------------------------------------------------------------------------ registration


def _register_table(con: duckdb.DuckDBPyConnection, table: LakeTable, root: str, as_of: int | datetime | None,
                    storage_options: dict[str, str] | None) -> RegisteredTable:
    location = table.location(root)
    found = _table_exists(location, storage_options)
    registered = RegisteredTable(table, location, found, empty=not found)
    version = None
    if found and as_of is not None and table.layer == "current":
        if isinstance(as_of, int):
            version = as_of
            latest = _latest_version(location, storage_options)
            if version > latest:
                raise TimeTravelError(f"{table.sql_name} has no version {version} (latest is {latest}): "
                                      "give a smaller version or a time")
        else:
            version = version_at(location, as_of, storage_options)
            registered.empty = version is None  # the table did not exist yet at that time
    registered.version = version
    if not registered.empty:
        args = f"'{_sql_text(location)}'" + (f", version => {version}" if version is not None else "")
        con.execute(f"CREATE OR REPLACE VIEW {table.sql_name} AS SELECT * FROM delta_scan({args})")
        return registered
    schema = table.arrow_schema()
    if schema is None:
        return registered  # no known columns (extract_rows not written yet): nothing to query, nothing reads it
    placeholder = f"__empty_{table.schema}_{table.name}"
    con.register(placeholder, schema.empty_table())
    con.execute(f"CREATE OR REPLACE VIEW {table.sql_name} AS SELECT * FROM {placeholder}")
    return registered


def _table_exists(location: str, storage_options: dict[str, str] | None) -> bool:
    if storage_options is None:
        return Path(location, "_delta_log").is_dir()
    from deltalake import DeltaTable

    return DeltaTable.is_deltatable(location, storage_options=storage_options)


def _latest_version(location: str, storage_options: dict[str, str] | None) -> int:
    from deltalake import DeltaTable

    return DeltaTable(location, storage_options=storage_options).version()


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _extension_path(module_name: str) -> str:
    module = __import__(module_name)
    found = glob.glob(os.path.join(os.path.dirname(module.__file__), "**", "*.duckdb_extension"), recursive=True)
    if not found:
        raise LakeSQLError(f"{module_name} ships no DuckDB extension file: reinstall it (pip install -c constraints.txt)")
    return found[0]


def _load_extensions(con: duckdb.DuckDBPyConnection, *, s3: bool) -> None:
    # Loaded from the wheels' files: no extension download at run time (machines may be offline).
    if s3:
        con.execute(f"LOAD '{_sql_text(_extension_path('duckdb_extension_httpfs'))}'")
    con.execute(f"LOAD '{_sql_text(_extension_path('duckdb_extension_delta'))}'")


def _create_s3_secret(con: duckdb.DuckDBPyConnection, settings: PlatformSettings) -> None:
    parts = [
        "TYPE s3",
        f"KEY_ID '{_sql_text(settings.s3_access_key)}'",
        f"SECRET '{_sql_text(settings.s3_secret_key.get_secret_value())}'",
        f"REGION '{_sql_text(settings.s3_region)}'",
    ]
    if settings.s3_endpoint:
        endpoint = urlparse(settings.s3_endpoint)
        parts += [f"ENDPOINT '{_sql_text(endpoint.netloc)}'", "URL_STYLE 'path'",
                  f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'}"]
    con.execute(f"CREATE SECRET lake_s3 ({', '.join(parts)})")


def _storage_options(settings: PlatformSettings) -> dict[str, str]:
    options = {
        "AWS_ACCESS_KEY_ID": settings.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
        "AWS_REGION": settings.s3_region,
    }
    if settings.s3_endpoint:
        options["AWS_ENDPOINT_URL"] = settings.s3_endpoint
        options["AWS_ALLOW_HTTP"] = "true"
    return options
