"""The schema registry client against a local stub speaking the Confluent REST API (no registry runs here)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

from claims_shared.clients.schema_registry import (
    CONTENT_TYPE,
    SchemaRegistryClient,
    SchemaRegistryError,
    SchemaRegistryUnavailable,
    value_subject,
)
from claims_shared.contracts.cdc_avro import contract_json


class _StubRegistry:
    """In-memory subjects and ids, the subset of the REST API the client uses; records every request."""

    def __init__(self) -> None:
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.config: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict[str, Any] | None, str | None]] = []
        self.fail_with: int | None = None


def _handler(stub: _StubRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any] | None:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _handle(self, method: str) -> None:
            body = self._body()
            stub.requests.append((method, self.path, body, self.headers.get("Content-Type")))
            if stub.fail_with:
                return self._reply(stub.fail_with, {"error_code": stub.fail_with * 100, "message": "boom"})
            parts = self.path.strip("/").split("/")
            if method == "POST" and parts[0] == "subjects" and parts[-1] == "versions":
                text = body["schema"]
                schema_id = next((i for i, s in stub.schemas.items() if s == text), len(stub.schemas) + 1)
                stub.schemas[schema_id] = text
                stub.subjects.setdefault(parts[1], []).append(schema_id)
                return self._reply(200, {"id": schema_id})
            if method == "POST" and parts[0] == "subjects" and len(parts) == 2:
                for schema_id in stub.subjects.get(parts[1], []):
                    if stub.schemas[schema_id] == body["schema"]:
                        return self._reply(200, {"subject": parts[1], "id": schema_id, "version": 1})
                return self._reply(404, {"error_code": 40403, "message": "Schema not found"})
            if method == "GET" and parts[:2] == ["schemas", "ids"]:
                schema_id = int(parts[2])
                if schema_id not in stub.schemas:
                    return self._reply(404, {"error_code": 40403, "message": "Schema not found"})
                return self._reply(200, {"schema": stub.schemas[schema_id]})
            if method == "PUT" and parts[0] == "config":
                stub.config[parts[1]] = body["compatibility"]
                return self._reply(200, body)
            if method == "POST" and parts[0] == "compatibility":
                return self._reply(409, {"error_code": 409, "message": "Schema being registered is incompatible"})
            return self._reply(404, {"error_code": 404, "message": "not found"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PUT(self) -> None:
            self._handle("PUT")

    return Handler


@pytest.fixture()
def registry() -> Iterator[tuple[_StubRegistry, str]]:
    stub = _StubRegistry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_register_returns_the_id_and_caches_it(registry: tuple[_StubRegistry, str]) -> None:
    stub, url = registry
    client = SchemaRegistryClient(url)
    schema = contract_json("claims")
    subject = value_subject("claims.cdc.claims.v1")
    assert subject == "claims.cdc.claims.v1-value"
    first = client.register(subject, schema)
    assert client.register(subject, schema) == first
    assert len(stub.requests) == 1, "the second registration must come from the cache"
    method, path, body, content_type = stub.requests[0]
    assert (method, path, content_type) == ("POST", "/subjects/claims.cdc.claims.v1-value/versions", CONTENT_TYPE)
    assert json.loads(body["schema"]) == schema


def test_get_schema_and_lookup(registry: tuple[_StubRegistry, str]) -> None:
    _, url = registry
    writer = SchemaRegistryClient(url)
    schema_id = writer.register("t-value", '{"type":"string"}')
    reader = SchemaRegistryClient(url)
    assert reader.get_schema(schema_id) == '{"type":"string"}'
    assert reader.lookup("t-value", '{"type":"string"}') == schema_id
    assert reader.lookup("t-value", '{"type":"long"}') is None


def test_set_compatibility(registry: tuple[_StubRegistry, str]) -> None:
    stub, url = registry
    SchemaRegistryClient(url).set_compatibility("t-value", "FULL_TRANSITIVE")
    assert stub.config == {"t-value": "FULL_TRANSITIVE"}
    with pytest.raises(ValueError, match="compatibility level"):
        SchemaRegistryClient(url).set_compatibility("t-value", "SOMETIMES")


def test_client_errors_are_terminal_with_the_registry_error_code(registry: tuple[_StubRegistry, str]) -> None:
    stub, url = registry
    client = SchemaRegistryClient(url)
    with pytest.raises(SchemaRegistryError) as err:
        client.is_compatible("t-value", '{"type":"string"}')
    assert err.value.status == 409 and err.value.error_code == 409
    stub.fail_with = 422
    with pytest.raises(SchemaRegistryError, match="422"):
        client.register("t-value", '{"type":"int"}')


def test_server_errors_and_unreachable_registry_are_transient(registry: tuple[_StubRegistry, str]) -> None:
    stub, url = registry
    stub.fail_with = 503
    with pytest.raises(SchemaRegistryUnavailable, match="503"):
        SchemaRegistryClient(url).register("t-value", '{"type":"int"}')
    with pytest.raises(SchemaRegistryUnavailable, match="CLAIMS_SCHEMA_REGISTRY_URL"):
        SchemaRegistryClient("http://127.0.0.1:9", timeout=2).register("t-value", '{"type":"int"}')


def test_cdc_encoder_from_settings_registers_against_the_configured_registry(
    registry: tuple[_StubRegistry, str],
) -> None:
    from claims_shared.contracts.cdc import ChangeRecord, SourcePosition
    from claims_shared.contracts.cdc_avro import CdcEncoder, confluent_unframe, decode_change
    from claims_shared.settings import PlatformSettings

    stub, url = registry
    encoder = CdcEncoder.from_settings(PlatformSettings(schema_registry_url=url))
    record = ChangeRecord("adjusters", "c", {"adjuster_id": 1}, {"adjuster_id": 1, "full_name": "Ana"},
                          SourcePosition(1, 2, 3, False, "claims_db", "public"))
    _, value, _ = encoder(record)
    schema_id, _ = confluent_unframe(value)
    assert json.loads(stub.schemas[schema_id]) == contract_json("adjusters")
    assert decode_change("adjusters", value)["row"]["full_name"] == "Ana"
    assert CdcEncoder.from_settings(PlatformSettings()).registry is None
