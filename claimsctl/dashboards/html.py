"""One self-contained HTML page of the dashboards: inline CSS, inline SVG charts, a few lines of inline JavaScript
(sortable tables). Nothing is fetched when the page is viewed."""

from __future__ import annotations

import html
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from claimsctl.dashboards import Dashboard, Question
from claimsctl.lake_sql.exceptions import LakeSQLError

PALETTE = ("#509ee3", "#ef8c8c", "#88bf4d", "#a989c5", "#f9d45c", "#98d9d9", "#f2a86f")
TABLE_ROW_LIMIT = 200

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f9fbfc;color:#2e353b}
header{background:#2e353b;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;font-size:12px;color:#c6ccd2}
section{padding:8px 24px 24px}section h2{font-size:18px;margin:16px 0 4px}section>p{margin:0 0 12px;color:#74838f}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:16px}
.card{background:#fff;border:1px solid #eeecec;border-radius:8px;padding:12px 16px;overflow:auto}
.card.wide{grid-column:1/-1}.card h3{font-size:14px;margin:0 0 8px}
.scalar{font-size:44px;font-weight:700;color:#509ee3;padding:12px 0}
table{border-collapse:collapse;font-size:12px;width:100%}th,td{border-bottom:1px solid #eeecec;padding:4px 8px;text-align:left}
th{cursor:pointer;background:#f4f5f6;user-select:none}td.num{text-align:right}
.legend{font-size:12px}.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;border-radius:2px}
.empty{color:#949aab;font-style:italic}details{font-size:11px;color:#74838f;margin-top:6px}
pre{white-space:pre-wrap;font-size:11px}
"""

_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, index) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.dataset.order !== 'asc';
    th.dataset.order = asc ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[th.cellIndex].dataset.v, y = b.cells[th.cellIndex].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
document.body.dataset.ready = 'true';
"""


def render_page(dashboards: list[Dashboard], engine) -> str:  # noqa: ANN001
    sections = []
    for dashboard in dashboards:
        cards = [_card(q, _run(q, engine)) for q in dashboard.questions]
        sections.append(
            f'<section id="{_attr(dashboard.name)}"><h2>{_e(dashboard.name)}</h2><p>{_e(dashboard.description)}</p>'
            f'<div class="grid">{"".join(cards)}</div></section>')
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    as_of = f" as of {engine.as_of}" if getattr(engine, "as_of", None) is not None else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Claims dashboards</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Claims dashboards</h1><p>lake {_e(str(engine.root))}{_e(as_of)}, generated {generated} by "
        "claimsctl dashboard (same questions as the Metabase dashboards)</p></header>"
        f"{''.join(sections)}<script>{_JS}</script></body></html>\n")


def _run(question: Question, engine) -> tuple[list[str], list[dict[str, Any]]]:  # noqa: ANN001
    try:
        result = engine.arrow(question.sql)
    except LakeSQLError as exc:
        raise LakeSQLError(f"dashboard question {question.name!r}: {exc}") from exc
    return result.column_names, result.to_pylist()


def _card(question: Question, result: tuple[list[str], list[dict[str, Any]]]) -> str:
    columns, rows = result
    if question.display == "scalar":
        value = rows[0][columns[0]] if rows else None
        body = f'<div class="scalar">{_e(_fmt(value))}</div>'
    elif not rows:
        body = '<p class="empty">no rows</p>'
    elif question.display == "bar":
        body = _bar_chart(question, rows)
    elif question.display == "line":
        body = _line_chart(question, rows)
    else:
        body = _table(columns, rows)
    wide = " wide" if question.display == "table" else ""
    return (f'<div class="card{wide}" data-question="{_attr(question.name)}"><h3>{_e(question.name)}</h3>{body}'
            f"<details><summary>SQL</summary><pre>{_e(question.sql)}</pre></details></div>")


# ------------------------------------------------------------------------------------------------ charts


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return 0.0


def _legend(series: tuple[str, ...]) -> str:
    if len(series) < 2:
        return ""
    items = "".join(f'<span style="background:{PALETTE[i % len(PALETTE)]}"></span>{_e(s)}' for i, s in enumerate(series))
    return f'<div class="legend">{items}</div>'


def _axis(width: int, height: int, left: int, bottom: int, top_value: float) -> str:
    lines = []
    for i in range(5):
        value = top_value * i / 4
        y = height - bottom - (height - bottom - 10) * i / 4
        lines.append(f'<line x1="{left}" x2="{width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eeecec"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#74838f">'
                     f"{_e(_fmt(round(value, 2)))}</text>")
    return "".join(lines)


def _bar_chart(question: Question, rows: list[dict[str, Any]], width: int = 560, height: int = 260) -> str:
    left, bottom = 44, 48
    series = question.y
    totals = [sum(_number(r[s]) for s in series) if question.stacked else max(_number(r[s]) for s in series)
              for r in rows]
    top = max(totals + [1.0])
    plot_w, plot_h = width - left, height - bottom - 10
    slot = plot_w / len(rows)
    bar_w = slot * 0.7 / (1 if question.stacked else len(series))
    parts = [_axis(width, height, left, bottom, top)]
    for i, row in enumerate(rows):
        x0 = left + i * slot + slot * 0.15
        stack = 0.0
        for j, s in enumerate(series):
            value = _number(row[s])
            h = plot_h * value / top
            if question.stacked:
                x, y = x0, height - bottom - plot_h * (stack + value) / top
                stack += value
            else:
                x, y = x0 + j * bar_w, height - bottom - h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{PALETTE[j % len(PALETTE)]}"><title>{_e(_fmt(row[question.x]))} {_e(s)}: '
                         f"{_e(_fmt(row[s]))}</title></rect>")
        label = _fmt(row[question.x])
        parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - bottom + 14}" font-size="10" '
                     f'text-anchor="middle" fill="#2e353b">{_e(label[:18])}</text>')
    return (f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_attr(question.name)}">'
            f'{"".join(parts)}</svg>{_legend(series)}')


def _line_chart(question: Question, rows: list[dict[str, Any]], width: int = 560, height: int = 260) -> str:
    left, bottom = 44, 48
    top = max([_number(r[s]) for r in rows for s in question.y] + [1.0])
    plot_w, plot_h = width - left - 10, height - bottom - 10
    step = plot_w / max(len(rows) - 1, 1)
    parts = [_axis(width, height, left, bottom, top)]
    for j, s in enumerate(question.y):
        color = PALETTE[j % len(PALETTE)]
        points = [(left + 5 + i * step, height - bottom - plot_h * _number(r[s]) / top) for i, r in enumerate(rows)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                     f'points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>')
        for (x, y), r in zip(points, rows):
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"><title>{_e(_fmt(r[question.x]))} '
                         f"{_e(s)}: {_e(_fmt(r[s]))}</title></circle>")
    label_every = max(1, len(rows) // 8)
    for i, r in enumerate(rows):
        if i % label_every == 0 or i == len(rows) - 1:
            anchor = "end" if i == len(rows) - 1 and i else "start" if i == 0 else "middle"
            parts.append(f'<text x="{left + 5 + i * step:.1f}" y="{height - bottom + 14}" font-size="10" '
                         f'text-anchor="{anchor}" fill="#2e353b">{_e(_fmt(r[question.x])[:18])}</text>')
    return (f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{_attr(question.name)}">'
            f'{"".join(parts)}</svg>{_legend(question.y)}')


def _table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows[:TABLE_ROW_LIMIT]:
        cells = []
        for c in columns:
            value = row[c]
            numeric = isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)
            cells.append(f'<td{" class=num" if numeric else ""} data-v="{_attr(_fmt(value))}">{_e(_fmt(value))}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = f'<p class="empty">first {TABLE_ROW_LIMIT} of {len(rows)} rows</p>' if len(rows) > TABLE_ROW_LIMIT else ""
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value):,}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _e(text: str) -> str:
    return html.escape(str(text), quote=False)


def _attr(text: str) -> str:
    return html.escape(str(text), quote=True)
