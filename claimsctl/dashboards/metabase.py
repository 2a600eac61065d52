"""Provision the dashboard definitions into Metabase through its REST API, idempotently by name.

Sequence: POST /api/session (log in) -> the Trino database (GET /api/database, POST or PUT /api/database) -> the
collection "Claims platform" (GET/POST /api/collection) -> its items (GET /api/collection/:id/items) -> one card per
question (POST /api/card or PUT /api/card/:id, native Trino SQL) -> one dashboard per definition (POST
/api/dashboard when new) and its cards laid out on the 24-column grid (GET + PUT /api/dashboard/:id with
`dashcards`; existing dashcards keep their ids). Re-running updates in place and creates nothing new.

Written against Metabase 0.55's API (docker-compose pins v0.55.0). Trino is reached with the Starburst driver
(engine "starburst"), which Metabase does not bundle: see README "Serving the lake".
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from claimsctl.dashboards import Dashboard, Question

DATABASE_NAME = "Claims lake (Trino)"
COLLECTION_NAME = "Claims platform"
GRID_WIDTH = 24
CARD_SIZES = {"scalar": (6, 3), "bar": (12, 6), "line": (12, 6), "table": (24, 8)}
DISPLAY_TO_METABASE = {"scalar": "scalar", "bar": "bar", "line": "line", "table": "table"}


class MetabaseError(Exception):
    """Metabase refused a request or is unreachable; the message has the method, path and Metabase's answer."""


@dataclass(frozen=True)
class TrinoConnection:
    """How Metabase reaches Trino (from inside compose: host `trino`, port 8080)."""

    host: str = "trino"
    port: int = 8080
    user: str = "metabase"
    catalog: str = "delta"
    schema: str = "gold"

    def details(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "catalog": self.catalog, "schema": self.schema,
                "user": self.user, "ssl": False}


class MetabaseClient:
    """A logged-in session against one Metabase; `request` returns the decoded JSON answer."""

    def __init__(self, base_url: str, session_id: str | None = None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session_id = session_id
        self.timeout_s = timeout_s

    @classmethod
    def login(cls, base_url: str, user: str, password: str) -> "MetabaseClient":
        client = cls(base_url)
        answer = client.request("POST", "/api/session", {"username": user, "password": password})
        if not isinstance(answer, dict) or "id" not in answer:
            raise MetabaseError(f"POST /api/session: no session id in Metabase's answer: {answer!r}")
        client.session_id = answer["id"]
        return client

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.session_id:
            req.add_header("X-Metabase-Session", self.session_id)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as response:  # noqa: S310 (URL from the user)
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise MetabaseError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            raise MetabaseError(f"{method} {path}: cannot reach Metabase at {self.base_url}: {exc.reason}") from exc
        return json.loads(payload) if payload else None


def _items(answer: Any) -> list[dict[str, Any]]:
    # Several list endpoints answer {"data": [...], "total": n} in recent versions and a bare list in older ones.
    if isinstance(answer, dict) and "data" in answer:
        return list(answer["data"])
    return list(answer or [])


def ensure_database(client: MetabaseClient, trino: TrinoConnection) -> tuple[int, str]:
    """Id of the Trino database named DATABASE_NAME (created, or its connection details updated)."""
    for db in _items(client.request("GET", "/api/database")):
        if db.get("name") == DATABASE_NAME:
            client.request("PUT", f"/api/database/{db['id']}", {"details": trino.details(), "engine": "starburst"})
            return db["id"], "updated"
    created = client.request("POST", "/api/database", {
        "name": DATABASE_NAME, "engine": "starburst", "details": trino.details(), "is_full_sync": True})
    return created["id"], "created"


def ensure_collection(client: MetabaseClient) -> tuple[int, str]:
    for collection in _items(client.request("GET", "/api/collection")):
        if collection.get("name") == COLLECTION_NAME and not collection.get("archived"):
            return collection["id"], "kept"
    created = client.request("POST", "/api/collection", {
        "name": COLLECTION_NAME, "color": "#509EE3",
        "description": "Provisioned by `claimsctl metabase provision` from infra/metabase/*.json; edits are overwritten."})
    return created["id"], "created"


def card_body(question: Question, database_id: int, collection_id: int) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if question.display in ("bar", "line"):
        settings = {"graph.dimensions": [question.x], "graph.metrics": list(question.y)}
        if question.stacked:
            settings["stackable.stack_type"] = "stacked"
    return {
        "name": question.name,
        "display": DISPLAY_TO_METABASE[question.display],
        "collection_id": collection_id,
        "dataset_query": {"type": "native", "database": database_id,
                          "native": {"query": question.sql, "template-tags": {}}},
        "visualization_settings": settings,
        "description": "Native Trino SQL from infra/metabase; same question as `claimsctl dashboard`.",
    }


def layout(questions: tuple[Question, ...]) -> list[tuple[int, int, int, int]]:
    """(row, col, size_x, size_y) of each question: left to right, wrapping at GRID_WIDTH."""
    places, row, col, row_height = [], 0, 0, 0
    for q in questions:
        w, h = CARD_SIZES[q.display]
        if col + w > GRID_WIDTH:
            row, col, row_height = row + row_height, 0, 0
        places.append((row, col, w, h))
        col += w
        row_height = max(row_height, h)
    return places


def provision(client: MetabaseClient, dashboards: list[Dashboard], trino: TrinoConnection) -> list[str]:
    """Create or update database, collection, cards and dashboards; returns one summary line per object."""
    summary = []
    database_id, what = ensure_database(client, trino)
    summary.append(f"database {DATABASE_NAME!r}: {what} (id {database_id})")
    collection_id, what = ensure_collection(client)
    summary.append(f"collection {COLLECTION_NAME!r}: {what} (id {collection_id})")
    items = _items(client.request("GET", f"/api/collection/{collection_id}/items"))
    cards = {i["name"]: i["id"] for i in items if i.get("model") == "card"}
    boards = {i["name"]: i["id"] for i in items if i.get("model") == "dashboard"}

    for dashboard in dashboards:
        card_ids = []
        for question in dashboard.questions:
            body = card_body(question, database_id, collection_id)
            if question.name in cards:
                client.request("PUT", f"/api/card/{cards[question.name]}", body)
                summary.append(f"card {question.name!r}: updated (id {cards[question.name]})")
            else:
                cards[question.name] = client.request("POST", "/api/card", body)["id"]
                summary.append(f"card {question.name!r}: created (id {cards[question.name]})")
            card_ids.append(cards[question.name])
        if dashboard.name in boards:
            dashboard_id, what = boards[dashboard.name], "updated"
        else:
            dashboard_id = client.request("POST", "/api/dashboard", {
                "name": dashboard.name, "description": dashboard.description, "collection_id": collection_id})["id"]
            boards[dashboard.name], what = dashboard_id, "created"
        existing = client.request("GET", f"/api/dashboard/{dashboard_id}").get("dashcards") or []
        by_card = {d.get("card_id"): d["id"] for d in existing}
        dashcards = []
        for n, (card_id, (row, col, w, h)) in enumerate(zip(card_ids, layout(dashboard.questions)), start=1):
            dashcards.append({"id": by_card.get(card_id, -n), "card_id": card_id, "row": row, "col": col,
                              "size_x": w, "size_y": h, "parameter_mappings": [], "visualization_settings": {}})
        client.request("PUT", f"/api/dashboard/{dashboard_id}", {
            "name": dashboard.name, "description": dashboard.description, "dashcards": dashcards})
        summary.append(f"dashboard {dashboard.name!r}: {what} (id {dashboard_id}, {len(dashcards)} cards)")
    return summary
