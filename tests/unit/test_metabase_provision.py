"""`claimsctl metabase provision` against a stub.

STAND-IN: no Metabase can run on this project's machines, so `MetabaseStub` below is a tiny in-memory HTTP server
that implements only the endpoints the provisioner calls (session, database, collection, card, dashboard) and
records every request. It checks the request sequence and idempotence, not Metabase's own behaviour: the real API
was not exercised here (README "Serving the lake").
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

from claimsctl.cli import main
from claimsctl.dashboards import load_dashboards
from claimsctl.dashboards.metabase import (
    COLLECTION_NAME,
    DATABASE_NAME,
    MetabaseClient,
    MetabaseError,
    TrinoConnection,
    layout,
    provision,
)
from tests.conftest import free_port_in

SESSION = "stub-session-id"


class MetabaseStub:
    """In-memory stand-in for the subset of Metabase's REST API the provisioner uses; records (method, path, body)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.databases: dict[int, dict] = {}
        self.collections: dict[int, dict] = {1: {"id": 1, "name": "Our analytics", "archived": False}}
        self.cards: dict[int, dict] = {}
        self.dashboards: dict[int, dict] = {}
        self.next_id = 100

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def handle(self, method: str, path: str, body: Any, session: str | None) -> tuple[int, Any]:
        self.calls.append((method, path.split("?")[0], body))
        if path == "/api/session" and method == "POST":
            ok = body == {"username": "admin@example.com", "password": "secret"}
            return (200, {"id": SESSION}) if ok else (401, {"errors": {"password": "did not match"}})
        if session != SESSION:
            return 401, "Unauthenticated"
        parts = path.split("?")[0].strip("/").split("/")[1:]
        if parts == ["database"] and method == "GET":
            return 200, {"data": list(self.databases.values()), "total": len(self.databases)}
        if parts == ["database"] and method == "POST":
            db = {**body, "id": self.new_id()}
            self.databases[db["id"]] = db
            return 200, db
        if parts[:1] == ["database"] and method == "PUT":
            self.databases[int(parts[1])].update(body)
            return 200, self.databases[int(parts[1])]
        if parts == ["collection"] and method == "GET":
            return 200, list(self.collections.values())
        if parts == ["collection"] and method == "POST":
            c = {**body, "id": self.new_id(), "archived": False}
            self.collections[c["id"]] = c
            return 200, c
        if parts[:1] == ["collection"] and parts[2:] == ["items"]:
            cid = int(parts[1])
            items = [{"id": c["id"], "name": c["name"], "model": "card"} for c in self.cards.values()
                     if c["collection_id"] == cid]
            items += [{"id": d["id"], "name": d["name"], "model": "dashboard"} for d in self.dashboards.values()
                      if d["collection_id"] == cid]
            return 200, {"data": items, "total": len(items)}
        if parts == ["card"] and method == "POST":
            card = {**body, "id": self.new_id()}
            self.cards[card["id"]] = card
            return 200, card
        if parts[:1] == ["card"] and method == "PUT":
            self.cards[int(parts[1])].update(body)
            return 200, self.cards[int(parts[1])]
        if parts == ["dashboard"] and method == "POST":
            board = {**body, "id": self.new_id(), "dashcards": []}
            self.dashboards[board["id"]] = board
            return 200, board
        if parts[:1] == ["dashboard"] and method == "GET":
            return 200, self.dashboards[int(parts[1])]
        if parts[:1] == ["dashboard"] and method == "PUT":
            board = self.dashboards[int(parts[1])]
            dashcards = []
            for dc in body.get("dashcards", []):
                dashcards.append({**dc, "id": dc["id"] if dc["id"] > 0 else self.new_id()})
            board.update({**body, "dashcards": dashcards})
            return 200, board
        return 404, f"stub: no route for {method} {path}"


@pytest.fixture
def stub() -> Iterator[tuple[MetabaseStub, str]]:
    state = MetabaseStub()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = state.handle(self.command, self.path, body, self.headers.get("X-Metabase-Session"))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port_in(23200, 23299)), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_provision_creates_database_collection_cards_and_dashboards_in_order(stub) -> None:
    state, url = stub
    dashboards = load_dashboards()
    result = CliRunner().invoke(main, ["metabase", "provision", "--url", url, "--user", "admin@example.com",
                                       "--password", "secret"])
    assert result.exit_code == 0, result.output
    sequence = [(m, p) for m, p, _ in state.calls]
    assert sequence[:6] == [("POST", "/api/session"), ("GET", "/api/database"), ("POST", "/api/database"),
                            ("GET", "/api/collection"), ("POST", "/api/collection"),
                            ("GET", f"/api/collection/{min(state.collections.keys() - {1})}/items")]
    (db,) = state.databases.values()
    assert db["name"] == DATABASE_NAME and db["engine"] == "starburst"
    assert db["details"] == {"host": "trino", "port": 8080, "catalog": "delta", "schema": "gold", "user": "metabase",
                             "ssl": False}
    questions = [q for d in dashboards for q in d.questions]
    assert sorted(c["name"] for c in state.cards.values()) == sorted(q.name for q in questions)
    for card in state.cards.values():
        question = next(q for q in questions if q.name == card["name"])
        assert card["dataset_query"] == {"type": "native", "database": db["id"],
                                         "native": {"query": question.sql, "template-tags": {}}}
    assert {d["name"] for d in state.dashboards.values()} == {"Claims SLA", "Fraud", "Telematics"}
    for board in state.dashboards.values():
        definition = next(d for d in dashboards if d.name == board["name"])
        assert len(board["dashcards"]) == len(definition.questions)
        assert all(dc["card_id"] in state.cards for dc in board["dashcards"])
    assert "dashboard 'Fraud': created" in result.output


def test_provision_twice_updates_in_place_and_creates_nothing(stub) -> None:
    state, url = stub
    dashboards = load_dashboards()
    provision(MetabaseClient.login(url, "admin@example.com", "secret"), dashboards, TrinoConnection())
    ids = (set(state.databases), set(state.collections), set(state.cards), set(state.dashboards),
           {dc["id"] for d in state.dashboards.values() for dc in d["dashcards"]})
    state.calls.clear()
    summary = provision(MetabaseClient.login(url, "admin@example.com", "secret"), dashboards, TrinoConnection())
    assert (set(state.databases), set(state.collections), set(state.cards), set(state.dashboards),
            {dc["id"] for d in state.dashboards.values() for dc in d["dashcards"]}) == ids
    assert not [c for c in state.calls if c[0] == "POST" and c[1] != "/api/session"]
    assert all("created" not in line for line in summary)
    assert any(line.startswith(f"collection {COLLECTION_NAME!r}: kept") for line in summary)


def test_wrong_password_is_a_clear_error(stub) -> None:
    _, url = stub
    with pytest.raises(MetabaseError, match="HTTP 401"):
        MetabaseClient.login(url, "admin@example.com", "wrong")


def test_unreachable_metabase_is_a_clear_error() -> None:
    port = free_port_in(23200, 23299)
    with pytest.raises(MetabaseError, match="cannot reach Metabase"):
        MetabaseClient.login(f"http://127.0.0.1:{port}", "a", "b")


def test_layout_wraps_at_the_grid_width() -> None:
    (sla,) = [d for d in load_dashboards() if d.name == "Claims SLA"]
    places = layout(sla.questions)
    assert all(col + w <= 24 for _, col, w, _ in places)
    assert places[0] == (0, 0, 6, 3) and places[1] == (0, 6, 6, 3)
