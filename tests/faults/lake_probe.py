"""The lake seen by the fault suite: read with delta-rs in a CHILD process, one command per call.

delta-rs was seen to abort at interpreter exit (rc 134) after its work was done (LOCAL-STACK.md): in pytest's own
process that would turn a green session red, so `probe()` runs `python -m tests.faults.lake_probe <command>`, which
prints one JSON document and leaves with `os._exit(0)`.

Commands (all against the lake root of the settings in the environment, or `--root`):
- `offsets`: the compactor's recorded positions, `{"topic:partition": next_offset}`;
- `state`: offsets, `claimsctl reconcile`'s comparison (claimsctl/lake/reconcile.py) per CDC table, and per append
  table its row count and the keys it holds;
- `canary`: the newest `_source_ts` (epoch ms) of `current/adjusters`, where the suite's CDC canary lands;
- `digest`: per table of the lake, its Delta version and its rows as sorted canonical JSON lines (columns that
  legitimately differ between two lakes removed, see IGNORED_COLUMNS), for comparing two lakes or one lake twice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from datetime import timezone
from typing import Any

from claims_shared.contracts.topics import CDC_TABLES
from claims_shared.settings import PROJECT_ROOT, PlatformSettings

# Columns left out when two lakes (or one lake before and after a replay) are compared row by row. Each must be
# data the compactor makes up at write time rather than takes from its input:
IGNORED_COLUMNS = {
    # `_compactor_offsets.updated_at` is the wall-clock time of the offsets write (writer.record_offsets): a
    # backfill writes it later than the live job, a replay that moves nothing leaves it alone. The positions
    # themselves (`next_offset`) are compared.
    "_compactor_offsets": {"updated_at"},
}


def key_text(values: list[Any]) -> str:
    """One append-table key as compact JSON: the same text on both sides of a comparison (LakeLedger)."""
    return json.dumps(values, separators=(",", ":"), default=str)


def probe(settings: PlatformSettings, command: str, *, root: str | None = None, timeout_s: float = 300) -> Any:
    """Run one command of this module in a child process with `settings`; returns its JSON answer."""
    args = [sys.executable, "-m", "tests.faults.lake_probe", command]
    if root:
        args += ["--root", root]
    out = subprocess.run(args, cwd=PROJECT_ROOT, env={**os.environ, **settings.as_env()}, capture_output=True,
                         text=True, timeout=timeout_s)
    if out.returncode != 0:
        raise RuntimeError(f"lake probe {command} failed (rc {out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout)


# ------------------------------------------------------------------------------------------------ child side


def _tables(root: str) -> dict[str, str]:
    from services.delta_compactor.append_tables import APPEND_TABLES
    from services.delta_compactor.lake_schema import LakeLayout

    layout = LakeLayout(root)
    out = {"_compactor_offsets": layout.offsets()}
    for table in CDC_TABLES:
        out[f"current/{table}"] = layout.current(table)
        out[f"history/{table}"] = layout.history(table)
    for append in APPEND_TABLES:
        out[f"append/{append.name}"] = layout.append(append.name)
    return out


def _open(settings: PlatformSettings, uri: str) -> Any:
    from deltalake import DeltaTable

    from claimsctl.lake import storage_options

    opts = storage_options(settings, uri)
    return DeltaTable(uri, storage_options=opts) if DeltaTable.is_deltatable(uri, storage_options=opts) else None


def _offsets(settings: PlatformSettings, root: str) -> dict[str, int]:
    from services.delta_compactor.lake_schema import LakeLayout

    table = _open(settings, LakeLayout(root).offsets())
    if table is None:
        return {}
    rows = table.to_pyarrow_table(columns=["topic", "partition", "next_offset"]).to_pylist()
    return {f"{r['topic']}:{r['partition']}": r["next_offset"] for r in rows}


def _state(settings: PlatformSettings, root: str) -> dict[str, Any]:
    from claimsctl.lake.reconcile import reconcile
    from services.delta_compactor.append_tables import APPEND_TABLES
    from services.delta_compactor.lake_schema import LakeLayout

    diffs = reconcile(settings.model_copy(update={"lake_root": root}))
    append = {}
    layout = LakeLayout(root)
    for t in APPEND_TABLES:
        table = _open(settings, layout.append(t.name))
        rows = [] if table is None else table.to_pyarrow_table(columns=list(t.key)).to_pylist()
        append[t.name] = {"rows": len(rows), "keys": [key_text([r[k] for k in t.key]) for r in rows]}
    return {
        "offsets": _offsets(settings, root),
        "reconcile": [{"table": d.table, "pg_rows": d.pg_rows, "lake_rows": d.lake_rows, "equal": d.equal,
                       "missing": len(d.missing), "extra": len(d.extra), "different": len(d.different),
                       "examples": [*d.missing[:2], *d.extra[:2], *(f"{k} {c}" for k, c in d.different[:2])]}
                      for d in diffs],
        "append": append,
    }


def _canary(settings: PlatformSettings, root: str) -> int | None:
    from services.delta_compactor.lake_schema import LakeLayout

    table = _open(settings, LakeLayout(root).current("adjusters"))
    if table is None:
        return None
    stamps = [t for t in table.to_pyarrow_table(columns=["_source_ts"]).column("_source_ts").to_pylist() if t]
    if not stamps:
        return None
    newest = max(stamps)
    if newest.tzinfo is None:  # Delta `timestamp` is UTC; a naive value must not be read as local time
        newest = newest.replace(tzinfo=timezone.utc)
    return int(newest.timestamp() * 1000)


def _digest(settings: PlatformSettings, root: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, uri in _tables(root).items():
        table = _open(settings, uri)
        if table is None:
            out[name] = {"version": None, "rows": []}
            continue
        ignored = IGNORED_COLUMNS.get(name, set())
        columns = [f.name for f in table.schema().fields if f.name not in ignored]
        rows = table.to_pyarrow_table(columns=columns).to_pylist()
        lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
        out[name] = {"version": table.version(), "rows": lines,
                     "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=("offsets", "state", "canary", "digest"))
    parser.add_argument("--root", default=None)
    args = parser.parse_args()
    settings = PlatformSettings()
    root = args.root or settings.lake_root_uri
    answer = {"offsets": _offsets, "state": _state, "canary": _canary, "digest": _digest}[args.command](settings, root)
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    os._exit(0)  # see the module docstring


if __name__ == "__main__":
    main()
