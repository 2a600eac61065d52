"""Avro schema compatibility, as Avro's schema resolution defines it, for guarding published contracts.

`full_compatibility_problems(old, new)` lists why a change of a published contract would break someone:
- backward (a consumer on the new schema reads data written with the old one): a field added without a default,
  a type changed to one the old type does not promote to, an enum symbol removed;
- forward (a consumer still on the old schema reads data written with the new one): a field removed that had no
  default in the old schema, a type changed the other way, an enum symbol added (old readers have no default).
Stricter than Avro on logical types: a changed logicalType, decimal precision or scale is a problem, since the bytes
still resolve but mean something else (or overflow the reader's decimal).

An empty list means the change is fully compatible (the registry's FULL); otherwise publish a new contract version
on a new topic (`claims.cdc.<table>.v2`).
"""

from __future__ import annotations

from typing import Any

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "enum", "fixed"})
# writer type -> reader types it resolves to (Avro specification, "Schema Resolution")
PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
LOGICAL_ATTRIBUTES = ("logicalType", "precision", "scale")


def full_compatibility_problems(old: Any, new: Any) -> list[str]:
    """Problems in both directions (empty: FULL compatible). `old`/`new` are schemas as JSON (dicts, lists, str)."""
    return [f"backward: {p}" for p in can_read_problems(reader=new, writer=old)] + [
        f"forward: {p}" for p in can_read_problems(reader=old, writer=new)
    ]


def can_read_problems(reader: Any, writer: Any) -> list[str]:
    """Why data written with `writer` cannot be read with `reader` (empty: it can)."""
    checker = _Resolver(_named_types(reader), _named_types(writer))
    checker.check(reader, writer, path="")
    return checker.problems


def _named_types(schema: Any) -> dict[str, dict[str, Any]]:
    """Full name -> definition of every named type in a schema."""
    found: dict[str, dict[str, Any]] = {}

    def walk(node: Any, namespace: str | None) -> None:
        if isinstance(node, list):
            for branch in node:
                walk(branch, namespace)
        elif isinstance(node, dict):
            kind = node.get("type")
            if kind in NAMED:
                fullname = _fullname(node, namespace)
                found[fullname] = node
                namespace = fullname.rpartition(".")[0] or None
            if kind == "record":
                for field in node.get("fields", []):
                    walk(field["type"], namespace)
            elif kind == "array":
                walk(node["items"], namespace)
            elif kind == "map":
                walk(node["values"], namespace)
            elif isinstance(kind, (dict, list)):
                walk(kind, namespace)

    walk(schema, None)
    return found


def _fullname(node: dict[str, Any], namespace: str | None) -> str:
    name = node["name"]
    if "." in name:
        return name
    ns = node.get("namespace", namespace)
    return f"{ns}.{name}" if ns else name


class _Resolver:
    def __init__(self, reader_names: dict[str, Any], writer_names: dict[str, Any]) -> None:
        self.reader_names = reader_names
        self.writer_names = writer_names
        self.problems: list[str] = []
        self._seen: set[tuple[str, str]] = set()

    def resolve(self, node: Any, names: dict[str, Any]) -> Any:
        """A type reference (`"claims.cdc.claims.Op"` or a short name) to its definition; primitives unchanged."""
        if isinstance(node, str) and node not in PRIMITIVES:
            if node in names:
                return names[node]
            matches = [d for full, d in names.items() if full.rpartition(".")[2] == node]
            if len(matches) == 1:
                return matches[0]
        if isinstance(node, dict) and isinstance(node.get("type"), (dict, list)):
            return node["type"]
        if isinstance(node, dict) and node.get("type") in PRIMITIVES and not any(a in node for a in LOGICAL_ATTRIBUTES):
            return node["type"]
        return node

    def check(self, reader: Any, writer: Any, path: str) -> None:
        reader = self.resolve(reader, self.reader_names)
        writer = self.resolve(writer, self.writer_names)
        where = path or "<root>"

        if isinstance(writer, list):
            # Every branch the writer may have used must be readable.
            for branch in writer:
                self.check(reader, branch, path)
            return
        if isinstance(reader, list):
            # The branch of the same type (and name) is the one Avro picks: report its problems, not just "no branch".
            same = [b for b in reader if self._same_kind(self.resolve(b, self.reader_names), writer)]
            if same:
                self.check(same[0], writer, path)
            elif not any(self._readable(branch, writer) for branch in reader):
                self.problems.append(f"{where}: no branch of reader union {_show(reader)} reads {_show(writer)}")
            return

        reader_kind, writer_kind = _kind(reader), _kind(writer)
        if reader_kind != writer_kind and reader_kind not in PROMOTIONS.get(writer_kind, ()):
            self.problems.append(f"{where}: type {_show(writer)} cannot be read as {_show(reader)}")
            return
        if _logical(reader) != _logical(writer):
            self.problems.append(f"{where}: logical type {_logical(writer)} changed to {_logical(reader)}")
            return

        if reader_kind == "record":
            self._check_record(reader, writer, path)
        elif reader_kind == "enum":
            self._check_enum(reader, writer, where)
        elif reader_kind == "fixed":
            if reader.get("size") != writer.get("size") or _short(reader) != _short(writer):
                self.problems.append(f"{where}: fixed {_short(writer)}[{writer.get('size')}] changed")
        elif reader_kind == "array":
            self.check(reader["items"], writer["items"], f"{path}[]")
        elif reader_kind == "map":
            self.check(reader["values"], writer["values"], f"{path}{{}}")

    @staticmethod
    def _same_kind(reader: Any, writer: Any) -> bool:
        if _kind(reader) != _kind(writer):
            return False
        return _kind(writer) not in NAMED or _short(reader) == _short(writer)

    def _readable(self, reader: Any, writer: Any) -> bool:
        probe = _Resolver(self.reader_names, self.writer_names)
        probe._seen = set(self._seen)
        probe.check(reader, writer, "")
        return not probe.problems

    def _check_record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> None:
        where = path or "<root>"
        if _short(reader) != _short(writer) and _short(writer) not in reader.get("aliases", []):
            self.problems.append(f"{where}: record {_short(writer)} renamed to {_short(reader)}")
            return
        pair = (id(reader), id(writer))
        if pair in self._seen:  # recursive types
            return
        self._seen.add(pair)
        writer_fields = {f["name"]: f for f in writer["fields"]}
        for field in reader["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            source = next((writer_fields[n] for n in names if n in writer_fields), None)
            field_path = f"{path}.{field['name']}" if path else field["name"]
            if source is None:
                if "default" not in field:
                    self.problems.append(
                        f"{field_path}: the reader expects this field, the writer does not have it, "
                        "and it has no default"
                    )
            else:
                self.check(field["type"], source["type"], field_path)

    def _check_enum(self, reader: dict[str, Any], writer: dict[str, Any], where: str) -> None:
        if _short(reader) != _short(writer):
            self.problems.append(f"{where}: enum {_short(writer)} renamed to {_short(reader)}")
            return
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if missing and "default" not in reader:
            self.problems.append(f"{where}: enum symbols {missing} unknown to the reader (and it has no default)")


def _kind(node: Any) -> str:
    if isinstance(node, str):
        return node
    return node.get("type") if isinstance(node.get("type"), str) else "?"


def _logical(node: Any) -> tuple[Any, ...] | None:
    if not isinstance(node, dict) or "logicalType" not in node:
        return None
    return tuple(node.get(a) for a in LOGICAL_ATTRIBUTES)


def _short(node: dict[str, Any]) -> str:
    return node["name"].rpartition(".")[2]


def _show(node: Any) -> str:
    if isinstance(node, list):
        return "[" + ", ".join(_show(b) for b in node) + "]"
    if isinstance(node, dict):
        if node.get("type") in NAMED:
            return f"{node['type']} {node['name']}"
        logical = node.get("logicalType")
        return f"{node.get('type')}({logical})" if logical else str(node.get("type"))
    return str(node)
