"""SQL over the claims lake on this machine: the production Trino views (infra/trino/views) run on DuckDB.

`connect()` is the Python API (notebooks, `claimsctl sql`, `claimsctl dashboard`); see engine.py.
"""

from claimsctl.lake_sql.engine import LakeSQL, connect, default_lake, parse_as_of
from claimsctl.lake_sql.exceptions import LakeNotFoundError, LakeSQLError, TimeTravelError

__all__ = ["LakeSQL", "connect", "default_lake", "parse_as_of", "LakeSQLError", "LakeNotFoundError", "TimeTravelError"]
