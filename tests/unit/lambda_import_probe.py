"""Run the document Lambda's handler in a fresh interpreter that can import only what its container image installs.

Child process of tests/unit/test_lambda_dependencies.py; standard library only until the handler is imported, so
that nothing it loads is already in sys.modules. Reads a JSON request on stdin:
  {"repo": root, "distributions": [normalized names the image installs], "packages": [first-party packages the
   image copies], "first_party": [all first-party packages], "objects": {landing key: file path}}
and prints {"outcomes", "records": {key: status}, "loaded": {distribution: [top-level modules]},
"first_party_loaded", "blocked": [imports refused]} as JSON. An import the image could not satisfy raises here.
"""

from __future__ import annotations

import json
import os
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class _OnlyTheImage:
    """Meta path finder refusing top-level modules of installed distributions the image would not have."""

    def __init__(self, owners: dict[str, list[str]], distributions: set[str], packages: set[str],
                 first_party: set[str]) -> None:
        self.owners, self.distributions = owners, distributions
        self.packages, self.first_party = packages, first_party
        self.blocked: list[str] = []

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        top = fullname.partition(".")[0]
        if top in sys.stdlib_module_names or top in self.packages:
            return
        owners = self.owners.get(top, [])
        if top in self.first_party or (owners and not any(_normalize(d) in self.distributions for d in owners)):
            if top not in self.blocked:
                self.blocked.append(top)
            raise ModuleNotFoundError(f"No module named {top!r}: not in the Lambda image ({owners or 'first party'})",
                                      name=top)
        return  # not ours to refuse: let the normal finders look for it


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


class _MemoryS3:
    """The few S3 calls the handler makes, on a dict of landing objects."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects, self.written = objects, {}

    def head_object(self, Bucket: str, Key: str, **_: object) -> dict:
        if Key not in self.objects:
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")
        return {"ContentLength": len(self.objects[Key]), "ETag": '"etag"', "VersionId": "v1"}

    def get_object(self, Bucket: str, Key: str, Range: str | None = None, **_: object) -> dict:
        return {"Body": _Body(self.objects[Key])}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: object) -> None:
        self.written[Key] = Body

    def copy_object(self, Bucket: str, Key: str, CopySource: dict, **_: object) -> None:
        self.written[Key] = self.objects[CopySource["Key"]]


class _MemoryProducer:
    def __init__(self) -> None:
        self.produced: list[tuple[str, bytes]] = []

    def produce(self, topic: str, value: bytes, key: bytes, headers: object = None, on_delivery=None) -> None:
        self.produced.append((topic, key))
        on_delivery(None, None)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def main() -> None:
    request = json.load(sys.stdin)
    sys.path.insert(0, request["repo"])
    owners = packages_distributions()
    finder = _OnlyTheImage(owners, set(request["distributions"]), set(request["packages"]),
                           set(request["first_party"]))
    sys.meta_path.insert(0, finder)
    already = set(sys.modules)
    # The real runtime (settings, boto3 client, confluent-kafka producer); nothing listens on port 1, and the
    # S3 client only connects when called, so no network. Its S3 and Kafka are then swapped for memory.
    os.environ["CLAIMS_KAFKA_BOOTSTRAP"] = "127.0.0.1:1"
    from lambdas.document_lambda import handler

    runtime = handler._get_runtime()
    objects = {key: Path(path).read_bytes() for key, path in request["objects"].items()}
    runtime.s3, runtime.producer = _MemoryS3(objects), _MemoryProducer()
    keys = [*objects, "incoming/deleted-before-processing.png"]
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": "claims-landing"}, "object": {"key": key, "size": 1}}}
                         for key in keys]}
    result = handler.handler(event, None)
    records = {}
    for key, body in runtime.s3.written.items():
        if key.endswith(".json"):
            record = json.loads(body)
            records[record["name"]] = record["status"]

    loaded: dict[str, set[str]] = {}
    first_party_loaded: set[str] = set()
    for name in set(sys.modules) - already:
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names:
            continue
        if top in finder.packages or top in finder.first_party:
            first_party_loaded.add(top)
            continue
        for distribution in owners.get(top, []):  # modules of no distribution (Cython's runtime) are skipped
            loaded.setdefault(_normalize(distribution), set()).add(top)
    print(json.dumps({"outcomes": result["outcomes"], "records": records,
                      "loaded": {d: sorted(tops) for d, tops in loaded.items()},
                      "first_party_loaded": sorted(first_party_loaded), "blocked": finder.blocked}))


if __name__ == "__main__":
    main()
