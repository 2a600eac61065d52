"""The document_record.v1 contract: every record the processor makes round-trips through Avro; the published
schema only changes compatibly; the CLI prints the same record the Lambda would publish."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from click.testing import CliRunner

from claims_shared.contracts.avro import SCHEMA_DIR
from claims_shared.contracts.compatibility import full_compatibility_problems
from claims_shared.contracts.documents import (
    DOCUMENT_RECORD_SCHEMA,
    DOCUMENTS_TOPIC,
    decode_document_record,
    encode_document_record,
    message_key,
    schema_headers,
)
from claims_shared.contracts.topics import OWNED_TOPICS
from claimsctl.cli import main
from lambdas.document_processor import DocumentRecord, ObjectRef, extract_document
from tests import document_samples as samples

SNAPSHOT = Path(__file__).parent / "contract_snapshots" / "document_record.v1.avsc"


def _records() -> list[DocumentRecord]:
    info = samples.simulator_info(51)
    ref = ObjectRef("claims-landing", "incoming/2026/03/12/CLM-2026-0000001/photo dégâts 1.jpg", version_id="v1")
    return [
        extract_document(samples.photo(51), ref.key, source=ref),
        extract_document(samples.text_pdf([[f"Claim number: {info.claim_number}", f"VIN: {info.vin}",
                                            "Loss date: 12/03/2026", "Total EUR 1.234,56 and $99.90"]]), "c.pdf"),
        extract_document(b"", "empty.jpg"),
        extract_document(samples.png_bomb(), "bomb.png"),
    ]


def test_every_kind_of_record_round_trips_through_avro() -> None:
    for record in _records():
        as_dict = record.to_dict()
        assert decode_document_record(encode_document_record(as_dict)) == as_dict
        assert message_key(as_dict) == record.document_id.encode()


def test_record_dict_has_exactly_the_contract_fields() -> None:
    contract = json.loads((SCHEMA_DIR / f"{DOCUMENT_RECORD_SCHEMA}.avsc").read_text())
    record = _records()[0].to_dict()
    assert list(record) == [f["name"] for f in contract["fields"]]
    nested = {f["name"]: f["type"] for f in contract["fields"] if isinstance(f["type"], dict)}
    assert list(record["exif"]) == [f["name"] for f in nested["exif"]["fields"]]
    assert list(record["fields"]) == [f["name"] for f in nested["fields"]["fields"]]


def test_published_contract_is_unchanged_or_compatible() -> None:
    """A failure here means: publish document_record.v2 on claims.documents.v2, or refresh the snapshot
    (cp claims_shared/contracts/schemas/document_record.v1.avsc tests/unit/contract_snapshots/) for a
    reviewed compatible change."""
    published = json.loads(SNAPSHOT.read_text())
    current = json.loads((SCHEMA_DIR / f"{DOCUMENT_RECORD_SCHEMA}.avsc").read_text())
    assert full_compatibility_problems(published, current) == []
    assert current == published


def test_topic_and_headers_follow_the_house_convention() -> None:
    assert DOCUMENTS_TOPIC == "claims.documents.v1"
    assert DOCUMENTS_TOPIC in {t.name for t in OWNED_TOPICS}
    assert schema_headers() == [("claims-schema", b"document_record.v1")]


def test_cli_prints_the_same_record_as_the_library(tmp_path: Path) -> None:
    body = samples.text_pdf([["Claim number: CLM-2026-0000007", "Date of loss: 3 March 2026", "EUR 410,00"]])
    path = tmp_path / "déclaration sinistre.pdf"
    path.write_bytes(body)
    result = CliRunner().invoke(main, ["extract-document", str(path), "--compact"])
    assert result.exit_code == 0, result.output
    printed = orjson.loads(result.output)
    assert printed == extract_document(body, path.name).to_dict()
    assert printed["fields"] == {"claim_number": "CLM-2026-0000007", "policy_number": None, "vin": None,
                                 "loss_date": "2026-03-03", "amounts": [410.0]}


def test_cli_exits_2_on_a_quarantined_file_and_still_prints_the_record(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    result = CliRunner().invoke(main, ["extract-document", str(path), "--compact"])
    assert result.exit_code == 2
    first_line = result.output.splitlines()[0]
    assert orjson.loads(first_line)["status"] == "quarantined"


def test_cli_document_id_matches_the_object_it_stands_for(tmp_path: Path) -> None:
    from lambdas.document_processor import document_id

    path = tmp_path / "a.jpg"
    path.write_bytes(samples.photo(52))
    result = CliRunner().invoke(main, ["extract-document", str(path), "--compact", "--bucket", "claims-landing",
                                       "--key", "incoming/x/a.jpg", "--version-id", "v7"])
    assert orjson.loads(result.output)["document_id"] == document_id("claims-landing", "incoming/x/a.jpg", "v7")
