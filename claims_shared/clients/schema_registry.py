"""A small client for the Confluent Schema Registry REST API (standard library only).

Covers what producers of the platform need: register a schema under a subject and get its id (cached), look a
schema up by id, set a subject's compatibility level. Subjects follow Confluent's TopicNameStrategy:
`<topic>-value`.

Errors: `SchemaRegistryUnavailable` (connection refused, timeout, HTTP 5xx: transient, retry later) and
`SchemaRegistryError` (a 4xx the registry answered: terminal, e.g. 409 incompatible schema; its `error_code` is the
registry's).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
COMPATIBILITY_LEVELS = (
    "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE", "NONE",
)


class SchemaRegistryError(RuntimeError):
    """The registry refused a request (HTTP 4xx); retrying the same request will not help."""

    def __init__(self, status: int, error_code: int | None, message: str) -> None:
        super().__init__(f"schema registry answered {status} (error_code {error_code}): {message}")
        self.status = status
        self.error_code = error_code


class SchemaRegistryUnavailable(RuntimeError):
    """The registry could not be reached or failed (timeout, connection error, HTTP 5xx): retry later."""


def value_subject(topic: str) -> str:
    """Subject of a topic's value schema (TopicNameStrategy)."""
    return f"{topic}-value"


class SchemaRegistryClient:
    """Thread-safe, caching client: a schema registered once is not sent again by this process."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, str] = {}
        self._lock = threading.Lock()

    def register(self, subject: str, schema: str | dict[str, Any]) -> int:
        """Register an Avro schema under `subject` (idempotent) and return its global id."""
        text = _schema_text(schema)
        cache_key = (subject, text)
        with self._lock:
            cached = self._ids.get(cache_key)
        if cached is not None:
            return cached
        answer = self._request("POST", f"/subjects/{_quote(subject)}/versions", {"schema": text})
        schema_id = int(answer["id"])
        with self._lock:
            self._ids[cache_key] = schema_id
            self._schemas[schema_id] = text
        return schema_id

    def lookup(self, subject: str, schema: str | dict[str, Any]) -> int | None:
        """Id of `schema` if it is already registered under `subject`, else None (does not register)."""
        try:
            answer = self._request("POST", f"/subjects/{_quote(subject)}", {"schema": _schema_text(schema)})
        except SchemaRegistryError as exc:
            if exc.status == 404:
                return None
            raise
        return int(answer["id"])

    def get_schema(self, schema_id: int) -> str:
        """Schema text of a global id (cached: ids are immutable)."""
        with self._lock:
            cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        text = self._request("GET", f"/schemas/ids/{int(schema_id)}")["schema"]
        with self._lock:
            self._schemas[schema_id] = text
        return text

    def set_compatibility(self, subject: str, level: str) -> None:
        """Compatibility level of a subject (e.g. `FULL_TRANSITIVE`)."""
        if level not in COMPATIBILITY_LEVELS:
            raise ValueError(f"compatibility level must be one of {COMPATIBILITY_LEVELS}, got {level!r}")
        self._request("PUT", f"/config/{_quote(subject)}", {"compatibility": level})

    def is_compatible(self, subject: str, schema: str | dict[str, Any]) -> bool:
        """Whether `schema` passes the subject's compatibility check against its latest version."""
        try:
            answer = self._request(
                "POST", f"/compatibility/subjects/{_quote(subject)}/versions/latest", {"schema": _schema_text(schema)}
            )
        except SchemaRegistryError as exc:
            if exc.status == 404:  # no version yet: anything is compatible
                return True
            raise
        return bool(answer.get("is_compatible"))

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                detail = json.loads(raw)
            except ValueError:
                detail = {"message": raw.decode(errors="replace")}
            if exc.code >= 500:
                raise SchemaRegistryUnavailable(
                    f"{method} {self.url}{path}: HTTP {exc.code}: {detail.get('message')}"
                ) from exc
            raise SchemaRegistryError(exc.code, detail.get("error_code"), str(detail.get("message"))) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise SchemaRegistryUnavailable(
                f"{method} {self.url}{path}: {exc}; is the registry at CLAIMS_SCHEMA_REGISTRY_URL up?"
            ) from exc


def _schema_text(schema: str | dict[str, Any]) -> str:
    return schema if isinstance(schema, str) else json.dumps(schema, separators=(",", ":"))


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")
