"""object_ingestor linking and photo rules (pure): document records and CDC changes in, links and alerts out."""

from __future__ import annotations

import io
import random
from datetime import datetime
from typing import Any

import pytest
from PIL import Image

from claims_shared.contracts.fraud import decode_alert, encode_alert
from claims_shared.contracts.objects import decode_document_link, encode_document_link
from services.object_ingestor.config import DocumentRulesConfig, document_rules_config
from services.object_ingestor.evidence import DocumentEvidence
from services.object_ingestor.linking import claim_number_from_key
from services.object_ingestor.photo_rules import PHOTO_BEFORE_LOSS, PHOTO_FAR, PHOTO_REUSED, PhashIndex

PARIS = (48.8566, 2.3522)
CONFIG = DocumentRulesConfig()


def claim(claim_id: str, number: str, *, policy_id: str = "pol-1", loss_time: str = "2026-03-10T14:00:00Z",
          loss_local_time: str | None = "2026-03-10T15:00:00", lat: float = PARIS[0], lon: float = PARIS[1],
          reported_at: str = "2026-03-10T16:00:00Z", op: str = "c", ts: int = 1) -> dict[str, Any]:
    row = {"claim_id": claim_id, "claim_number": number, "policy_id": policy_id, "vehicle_id": None,
           "loss_time": loss_time, "loss_local_time": loss_local_time, "loss_lat": lat, "loss_lon": lon,
           "reported_at": reported_at, "status": "fnol"}
    return {"op": op, "key": {"claim_id": claim_id}, "row": None if op == "d" else row, "unchanged": [],
            "source_ts_ms": ts}


def policy(policy_id: str, number: str) -> dict[str, Any]:
    return {"op": "c", "key": {"policy_id": policy_id}, "row": {"policy_id": policy_id, "policy_number": number},
            "unchanged": [], "source_ts_ms": 1}


def doc(document_id: str, *, key: str | None = None, claim_number: str | None = None,
        policy_number: str | None = None, loss_date: str | None = None, phash: str | None = None,
        captured_at: str | None = None, gps: tuple[float, float] | None = None,
        mime: str = "image/jpeg", text_source: str = "none") -> dict[str, Any]:
    return {"document_id": document_id, "sha256": "0" * 64, "mime_type": mime, "status": "ok",
            "source": {"bucket": "claims-landing", "key": key, "version_id": None, "etag": "e"} if key else None,
            "exif": {"captured_at": captured_at, "gps_lat": gps[0] if gps else None,
                     "gps_lon": gps[1] if gps else None},
            "phash": phash, "text_source": text_source,
            "fields": {"claim_number": claim_number, "policy_number": policy_number, "loss_date": loss_date,
                       "vin": None, "amounts": []}}


def key(number: str, name: str = "photo.jpg") -> str:
    return f"incoming/2026/03/10/{number}/{name}"


def run(evidence: DocumentEvidence) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    out = evidence.collect(now_ms=1_800_000_000_000)
    evidence.confirm(out)
    return out.links, out.alerts


# -- linking ------------------------------------------------------------------------------------------------------
def test_claim_number_in_the_content_wins_over_the_key_path() -> None:
    ev = DocumentEvidence()
    ev.add_claim_change(claim("c1", "CLM-2026-0000001"))
    ev.add_claim_change(claim("c2", "CLM-2026-0000002"))
    ev.add_document(doc("d1", key=key("CLM-2026-0000002"), claim_number="clm–2026–0000001", mime="text/plain",
                        text_source="plain"))
    links, _ = run(ev)
    assert [(x["document_id"], x["claim_id"], x["method"]) for x in links] == [("d1", "c1", "claim_number")]


def test_policy_and_loss_date_link_only_a_single_matching_claim() -> None:
    ev = DocumentEvidence()
    ev.add_policy_change(policy("pol-1", "POL-2026-0000009"))
    ev.add_claim_change(claim("c1", "CLM-2026-0000001", loss_local_time="2026-03-10T15:00:00"))
    ev.add_claim_change(claim("c2", "CLM-2026-0000002", loss_local_time="2026-02-01T09:00:00"))
    ev.add_document(doc("d1", policy_number="POL-2026-0000009", loss_date="2026-03-10", mime="application/pdf"))
    ev.add_document(doc("d2", policy_number="POL-2026-0000009", loss_date="2026-04-01", mime="application/pdf"))
    links, _ = run(ev)
    assert [(x["document_id"], x["claim_id"], x["method"]) for x in links] == [("d1", "c1", "policy_loss_date")]
    ev.add_claim_change(claim("c3", "CLM-2026-0000003", loss_local_time="2026-03-10T20:00:00"))
    ev.add_claim_change(claim("c4", "CLM-2026-0000004", loss_local_time=None, loss_time="2026-04-01T23:30:00Z"))
    links, _ = run(ev)   # d1 is now ambiguous (two claims that day): its link goes; d2 matches c4 within a day
    assert sorted((x["document_id"], x["claim_id"], x["method"]) for x in links) == \
        [("d1", None, "unlinked"), ("d2", "c4", "policy_loss_date")]


def test_unlinked_documents_are_kept_and_linked_when_their_claim_arrives() -> None:
    ev = DocumentEvidence()
    ev.add_document(doc("d1", key=key("CLM-2026-0000007")))
    assert run(ev) == ([], [])
    assert ev.gauges()["documents_unlinked"] == 1
    ev.add_claim_change(claim("c7", "CLM-2026-0000007"))
    links, _ = run(ev)
    assert [(x["claim_id"], x["method"]) for x in links] == [("c7", "key_path")]
    assert ev.gauges()["documents_unlinked"] == 0 and run(ev) == ([], [])


def test_key_paths_name_claims_only_under_incoming_dates() -> None:
    assert claim_number_from_key("incoming/2026/03/10/CLM-2026-0000001/a b.jpg") == "CLM-2026-0000001"
    assert claim_number_from_key("incoming/2026/03/10/batches/x.csv") is None
    assert claim_number_from_key("processed/2026/03/10/CLM-2026-0000001/a.jpg") is None
    assert claim_number_from_key("incoming/CLM-2026-0000001/a.jpg") is None


def test_extracts_are_not_linked() -> None:
    ev = DocumentEvidence()
    ev.add_document(doc("d1", key="incoming/2026/03/10/batches/x.csv", mime="text/csv", text_source="plain"))
    assert ev.gauges()["documents_known"] == 0 and ev.counters["documents_extracts"] == 1


# -- photo rules --------------------------------------------------------------------------------------------------
def two_claims(ev: DocumentEvidence) -> None:
    ev.add_claim_change(claim("c1", "CLM-2026-0000001", reported_at="2026-03-10T16:00:00Z"))
    ev.add_claim_change(claim("c2", "CLM-2026-0000002", reported_at="2026-03-11T16:00:00Z"))


def photo_doc(document_id: str, number: str, phash: str, **kw: Any) -> dict[str, Any]:
    kw.setdefault("captured_at", "2026-03-10T15:20:00")
    kw.setdefault("gps", PARIS)
    return doc(document_id, key=key(number, f"{document_id}.jpg"), phash=phash, **kw)


@pytest.mark.parametrize("order", [("d1", "d2"), ("d2", "d1")])
def test_a_photo_reused_on_another_claim_gives_one_alert_on_the_later_claim(order: tuple[str, str]) -> None:
    ev = DocumentEvidence()
    two_claims(ev)
    docs = {"d1": photo_doc("d1", "CLM-2026-0000001", "f0f0f0f0f0f0f0f0"),
            "d2": photo_doc("d2", "CLM-2026-0000002", "f0f0f0f0f0f0f0ff")}   # 4 bits apart
    for d in order:
        ev.add_document(docs[d])
    _, alerts = run(ev)
    assert [(a["claim_id"], a["rule"]) for a in alerts] == [("c2", PHOTO_REUSED)]
    assert alerts[0]["alert_id"] == _reused_alert_id()


def _reused_alert_id() -> str:
    ev = DocumentEvidence()
    two_claims(ev)
    ev.add_document(photo_doc("d1", "CLM-2026-0000001", "f0f0f0f0f0f0f0f0"))
    ev.add_document(photo_doc("d2", "CLM-2026-0000002", "f0f0f0f0f0f0f0ff"))
    return run(ev)[1][0]["alert_id"]


def test_near_duplicates_on_the_same_claim_or_beyond_the_threshold_are_not_alerts() -> None:
    ev = DocumentEvidence()
    two_claims(ev)
    ev.add_document(photo_doc("d1", "CLM-2026-0000001", "0000000000000000"))
    ev.add_document(photo_doc("d2", "CLM-2026-0000001", "0000000000000000"))   # same claim, same picture
    ev.add_document(photo_doc("d3", "CLM-2026-0000002", "00000000000001ff"))   # 9 bits: a different picture
    assert run(ev)[1] == []


def test_scanned_forms_are_not_photos() -> None:
    ev = DocumentEvidence()
    two_claims(ev)
    ev.add_document(photo_doc("d1", "CLM-2026-0000001", "0000000000000000", text_source="ocr"))
    ev.add_document(photo_doc("d2", "CLM-2026-0000002", "0000000000000000", text_source="ocr"))
    assert run(ev)[1] == []


@pytest.mark.parametrize(("captured_at", "local", "fires", "mode"), [
    ("2026-03-10T12:59:00", "2026-03-10T15:00:00", True, "loss_local_time"),
    ("2026-03-10T13:01:00", "2026-03-10T15:00:00", False, None),                    # within the 2 h tolerance
    ("2026-03-09T21:59:00", None, True, "zone_slack"),                              # 16 h 1 min before 14:00Z
    ("2026-03-09T22:01:00", None, False, None),                                     # 15 h 59: zone + tolerance
    ("2026-03-10T13:00:00+02:00", None, True, "exif_offset"),                       # 11:00Z, 3 h before
])
def test_photo_taken_before_the_loss(captured_at: str, local: str | None, fires: bool, mode: str | None) -> None:
    ev = DocumentEvidence()
    ev.add_claim_change(claim("c1", "CLM-2026-0000001", loss_local_time=local))
    ev.add_document(photo_doc("d1", "CLM-2026-0000001", "0123456789abcdef", captured_at=captured_at))
    alerts = [a for a in run(ev)[1] if a["rule"] == PHOTO_BEFORE_LOSS]
    assert len(alerts) == (1 if fires else 0)
    if fires:
        import json
        assert json.loads(alerts[0]["evidence_json"])["comparison"] == mode


def test_photo_far_from_the_loss_place() -> None:
    ev = DocumentEvidence()
    ev.add_claim_change(claim("c1", "CLM-2026-0000001"))
    ev.add_document(photo_doc("near", "CLM-2026-0000001", "0123456789abcdef", gps=(48.9, 2.4)))     # ~6 km
    ev.add_document(photo_doc("far", "CLM-2026-0000001", "fedcba9876543210", gps=(49.2583, 4.0317)))  # Reims
    alerts = run(ev)[1]
    assert [(a["rule"], a["evidence_json"].count('"far"')) for a in alerts] == [(PHOTO_FAR, 1)]


def test_a_rebuilt_state_with_what_was_published_repeats_nothing() -> None:
    def build() -> DocumentEvidence:
        ev = DocumentEvidence()
        two_claims(ev)
        ev.add_document(photo_doc("d1", "CLM-2026-0000001", "f0f0f0f0f0f0f0f0", captured_at="2026-03-01T10:00:00"))
        ev.add_document(photo_doc("d2", "CLM-2026-0000002", "f0f0f0f0f0f0f0f0"))
        return ev

    links, alerts = run(build())
    assert len(links) == 2 and {a["rule"] for a in alerts} == {PHOTO_REUSED, PHOTO_BEFORE_LOSS}
    restarted = build()
    restarted.mark_published_links({x["document_id"]: (x["claim_id"], x["method"]) for x in links})
    restarted.mark_published_alerts(a["alert_id"] for a in alerts)
    assert run(restarted) == ([], [])
    # A status change keeps the loss facts: still nothing; a moved loss time is a new fact: a new alert.
    restarted.add_claim_change(claim("c1", "CLM-2026-0000001", reported_at="2026-03-10T16:00:00Z", ts=2))
    assert run(restarted) == ([], [])
    restarted.add_claim_change(claim("c1", "CLM-2026-0000001", loss_local_time="2026-03-10T18:00:00", ts=3))
    assert [a["rule"] for a in run(restarted)[1]] == [PHOTO_BEFORE_LOSS]


def test_unconfirmed_outputs_are_collected_again_with_the_same_ids() -> None:
    ev = DocumentEvidence()
    two_claims(ev)
    ev.add_document(photo_doc("d1", "CLM-2026-0000001", "f0f0f0f0f0f0f0f0"))
    ev.add_document(photo_doc("d2", "CLM-2026-0000002", "f0f0f0f0f0f0f0f0"))
    first = ev.collect(1)   # delivery failed: not confirmed
    again = ev.collect(2)
    assert [a["alert_id"] for a in again.alerts] == [a["alert_id"] for a in first.alerts] and again.links


def test_alerts_and_links_fit_their_contracts() -> None:
    ev = DocumentEvidence()
    two_claims(ev)
    ev.add_document(photo_doc("d1", "CLM-2026-0000001", "f0f0f0f0f0f0f0f0"))
    ev.add_document(photo_doc("d2", "CLM-2026-0000002", "f0f0f0f0f0f0f0f0"))
    links, alerts = run(ev)
    for alert in alerts:
        assert decode_alert(encode_alert(alert)[1]) == alert
    for link in links:
        assert decode_document_link(encode_document_link(link)[1]) == link


# -- threshold and index ------------------------------------------------------------------------------------------
def test_re_encoded_resized_and_cropped_photos_stay_within_the_threshold() -> None:
    """The threshold's own check, on pictures with distinct coarse structure (see README for the figures)."""
    from PIL import ImageDraw

    from lambdas.document_processor import extract_document
    from lambdas.document_processor.images import hamming_distance

    def picture(seed: int) -> Image.Image:
        rng = random.Random(seed)
        img = Image.new("RGB", (640, 480), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        for _ in range(12):
            x, y = rng.randrange(-100, 600), rng.randrange(-100, 440)
            draw.ellipse((x, y, x + rng.randrange(80, 300), y + rng.randrange(80, 300)),
                         fill=tuple(rng.randrange(256) for _ in range(3)))
        return img

    def phash(img: Image.Image, quality: int = 90) -> str:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality)
        return extract_document(buf.getvalue(), "p.jpg").phash

    for seed in range(10):
        img = picture(seed)
        h = phash(img)
        variants = [phash(img, 60), phash(img.resize((480, 360))), phash(img.crop((12, 9, 628, 471)))]
        assert max(hamming_distance(h, v) for v in variants) <= CONFIG.phash_max_distance
        other = phash(picture(seed + 100))
        assert hamming_distance(h, other) > CONFIG.phash_max_distance


def test_phash_index_finds_neighbours_and_forgets_removed_ones() -> None:
    index = PhashIndex()
    rng = random.Random(1)
    for i in range(3000):
        index.add(f"d{i}", rng.getrandbits(64))
    index.add("target", 0xFFFF_0000_FFFF_0000)
    assert ("target", 3) in index.near(0xFFFF_0000_FFFF_0007, 8)
    index.remove("target")
    assert all(d != "target" for d, _ in index.near(0xFFFF_0000_FFFF_0007, 8))


def test_overrides_are_checked_by_name() -> None:
    assert document_rules_config({"far_km": 50}).far_km == 50
    with pytest.raises(ValueError, match="phash_max_distance"):
        document_rules_config({"phash_distance": 4})
