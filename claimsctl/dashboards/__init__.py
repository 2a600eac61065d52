"""Dashboards as code: infra/metabase/*.json define dashboards of questions written as native Trino SQL over the
serving views. The same definitions are provisioned into Metabase (`metabase.provision`) and rendered offline into
one HTML page by the embedded engine (`html.render_html`), so both always show the same SQL.

File format: {"name", "description", "questions": [{"name", "display", "sql", "x"?, "y"?, "stacked"?}]}, where
display is scalar (first column of the first row), bar or line (x column, y columns), or table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from claims_shared.settings import PROJECT_ROOT

DASHBOARDS_DIR = PROJECT_ROOT / "infra" / "metabase"
DISPLAYS = ("scalar", "bar", "line", "table")


class DashboardDefinitionError(ValueError):
    """A dashboard file is malformed; the message names the file and the question."""


@dataclass(frozen=True)
class Question:
    name: str
    display: str
    sql: str
    x: str | None = None
    y: tuple[str, ...] = ()
    stacked: bool = False


@dataclass(frozen=True)
class Dashboard:
    name: str
    description: str
    questions: tuple[Question, ...] = field(default_factory=tuple)
    source: Path | None = None


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Dashboard]:
    """Every dashboard definition of `directory`, by file name; raises DashboardDefinitionError on a bad file."""
    dashboards = []
    for path in sorted(directory.glob("*.json")):
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise DashboardDefinitionError(f"{path}: not JSON: {exc}") from exc
        questions = []
        for q in raw.get("questions", []):
            display = q.get("display")
            where = f"{path}: question {q.get('name')!r}"
            if not q.get("name") or not q.get("sql"):
                raise DashboardDefinitionError(f"{where}: needs a name and sql")
            if display not in DISPLAYS:
                raise DashboardDefinitionError(f"{where}: display must be one of {', '.join(DISPLAYS)}")
            if display in ("bar", "line") and (not q.get("x") or not q.get("y")):
                raise DashboardDefinitionError(f"{where}: a {display} chart needs x and y columns")
            questions.append(Question(q["name"], display, q["sql"], q.get("x"), tuple(q.get("y", ())),
                                      bool(q.get("stacked", False))))
        if not raw.get("name") or not questions:
            raise DashboardDefinitionError(f"{path}: needs a name and at least one question")
        dashboards.append(Dashboard(raw["name"], raw.get("description", ""), tuple(questions), path))
    names = [q.name for d in dashboards for q in d.questions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DashboardDefinitionError(f"question names must be unique (Metabase matches by name): {duplicates}")
    return dashboards


def render_html(dashboards: list[Dashboard], engine) -> str:  # noqa: ANN001
    """Self-contained HTML page of `dashboards`, every question run on `engine` (a claimsctl.lake_sql.LakeSQL)."""
    from claimsctl.dashboards.html import render_page

    return render_page(dashboards, engine)
