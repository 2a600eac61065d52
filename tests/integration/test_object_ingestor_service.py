"""object_ingestor as deployed: document records on the broker, claims through PostgreSQL -> Debezium -> normalizer,
extracts in the landing bucket -> links, photo alerts, extract rows and rejects. The document Lambda is not needed:
the tests build document records with the processor's own `extract_document` and produce them themselves."""

from __future__ import annotations

import io
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from confluent_kafka import Producer
from PIL import Image, ImageDraw

from claims_shared.clients.aws import s3_client
from claims_shared.contracts.documents import (
    DOCUMENTS_TOPIC,
    encode_document_record,
    message_key,
    schema_headers,
)
from claims_shared.contracts.fraud import FRAUD_ALERTS_TOPIC, decode_alert
from claims_shared.contracts.objects import (
    DOCUMENT_LINKS_TOPIC,
    EXTRACT_REJECTS_TOPIC,
    EXTRACT_ROWS_TOPIC,
    OBJECTS_DEAD_LETTER_TOPIC,
    decode_document_link,
    decode_extract_reject,
    decode_extract_row,
)
from claims_shared.settings import PlatformSettings
from claimsctl.simulator.landing import _InvoiceSource, render_invoice_batch
from claimsctl.stack.embedded import EmbeddedStack
from lambdas.document_processor import ObjectRef, extract_document
from services.object_ingestor.photo_rules import PHOTO_BEFORE_LOSS, PHOTO_FAR, PHOTO_REUSED
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

PARIS = (48.8566, 2.3522)


@pytest.fixture(scope="module")
def stack(stack_settings: PlatformSettings) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(stack_settings)
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def service(stack: EmbeddedStack) -> Any:
    return next(c for c in stack.components if c.name == "object-ingestor")


def diagnosis(stack: EmbeddedStack) -> str:
    svc = service(stack)
    try:
        metrics = json.dumps(svc.impl.metrics())
    except OSError as exc:
        metrics = f"(no metrics: {exc})"
    log = svc.impl.proc.logfile
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return f"metrics: {metrics}\nlog tail:\n" + "\n".join(lines[-40:])


# -- inputs -------------------------------------------------------------------------------------------------------
def claim_number() -> str:
    return f"CLM-2026-{random.SystemRandom().randrange(1, 10**7):07d}"


def insert_claims(settings: PlatformSettings, losses: list[dict[str, Any]]) -> tuple[str, list[tuple[str, str]]]:
    """A customer, a policy and one claim per loss ({loss_time, loss_local_time?, lat, lon}); claims are inserted
    one transaction each, in order (so reported_at increases). Returns (policy number, [(claim_id, number)])."""
    tag = uuid.uuid4().hex[:10]
    policy_number = f"POL-2026-{random.SystemRandom().randrange(1, 10**7):07d}"
    with psycopg.connect(settings.pg_dsn) as conn:
        customer = conn.execute(
            "INSERT INTO customers (full_name, date_of_birth, national_id) VALUES ('Doc Tester', '1980-01-01', %s) "
            "RETURNING customer_id", (f"NID-{tag}",)).fetchone()[0]
        policy = conn.execute(
            "INSERT INTO policies (policy_number, customer_id, product, inception_date, expiry_date, sum_insured, "
            "annual_premium) VALUES (%s, %s, 'motor_comprehensive', '2026-01-01', '2027-01-01', 25000, 600) "
            "RETURNING policy_id", (policy_number, customer)).fetchone()[0]
    claims = []
    for loss in losses:
        number = loss.get("claim_number") or claim_number()
        with psycopg.connect(settings.pg_dsn) as conn:
            claim_id = conn.execute(
                "INSERT INTO claims (claim_number, policy_id, status, loss_time, loss_local_time, loss_lat, loss_lon, "
                "loss_type, sla_due_at) VALUES (%s, %s, 'fnol', %s, %s, %s, %s, 'collision', "
                "now() + interval '5 days') RETURNING claim_id",
                (number, policy, loss["loss_time"], loss.get("loss_local_time"), loss["lat"], loss["lon"]),
            ).fetchone()[0]
        claims.append((str(claim_id), number))
    return policy_number, claims


def photo(seed: int, *, taken_local: datetime, lat: float, lon: float, quality: int = 90,
          size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG with EXIF time and GPS whose picture (random coloured shapes) differs per seed in its coarse
    structure, as real photos do (the simulator's photos share one scene; see README)."""
    rng = random.Random(seed)
    img = Image.new("RGB", (640, 480), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.randrange(-100, 600), rng.randrange(-100, 440)
        draw.ellipse((x, y, x + rng.randrange(80, 300), y + rng.randrange(80, 300)),
                     fill=tuple(rng.randrange(256) for _ in range(3)))
    img = img.resize(size)
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Google", "Pixel 7"
    exif.get_ifd(0x8769)[0x9003] = f"{taken_local:%Y:%m:%d %H:%M:%S}"
    gps = exif.get_ifd(0x8825)

    def dms(v: float) -> tuple[float, float, float]:
        v = abs(v)
        return float(int(v)), float(int((v - int(v)) * 60)), round((v - int(v) - int((v - int(v)) * 60) / 60) * 3600, 2)

    gps[0x0001], gps[0x0002] = ("N" if lat >= 0 else "S"), dms(lat)
    gps[0x0003], gps[0x0004] = ("E" if lon >= 0 else "W"), dms(lon)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, exif=exif)
    return buf.getvalue()


def document_record(settings: PlatformSettings, key: str, body: bytes, *, upload: bool = False) -> dict[str, Any]:
    """The record the document Lambda would publish for this object (uploaded first when `upload`)."""
    etag = uuid.uuid4().hex
    if upload:
        etag = s3_client(settings).put_object(Bucket=settings.landing_bucket, Key=key, Body=body)["ETag"].strip('"')
    ref = ObjectRef(settings.landing_bucket, key, etag=etag)
    return extract_document(body, key, source=ref).to_dict()


def produce_documents(settings: PlatformSettings, records: list[dict[str, Any]]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for record in records:
        producer.produce(DOCUMENTS_TOPIC, encode_document_record(record), message_key(record),
                         headers=schema_headers())
    assert producer.flush(30) == 0


def landing_key(number: str, name: str, day: str = "2026/03/10") -> str:
    return f"incoming/{day}/{number}/{name}"


def alerts_for(stack: EmbeddedStack, claim_ids: set[str], *, at_least: int, settle_s: float = 0.0,
               timeout_s: float = 150) -> list[dict[str, Any]]:
    def mine(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [a for a in items if a["claim_id"] in claim_ids]
    try:
        items = read_topic(stack.settings, FRAUD_ALERTS_TOPIC, decode=lambda m: decode_alert(m.value()),
                           until=lambda al: len(mine(al)) >= at_least, timeout_s=timeout_s, settle_s=settle_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnosis(stack)}") from exc
    return mine(items)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# -- tests --------------------------------------------------------------------------------------------------------
def test_photo_reused_on_two_claims_raises_one_alert_on_the_later_claim(stack: EmbeddedStack) -> None:
    s = stack.settings
    loss = {"loss_time": utc("2026-03-10T14:00:00"), "loss_local_time": "2026-03-10T15:00:00", "lat": PARIS[0],
            "lon": PARIS[1]}
    _, [(first_id, first_no), (second_id, second_no)] = insert_claims(s, [loss, loss])
    taken = datetime(2026, 3, 10, 15, 20)
    original = photo(101, taken_local=taken, lat=PARIS[0] + 0.0003, lon=PARIS[1])
    # The same picture sent again for another claim: re-compressed and resized, as messengers do.
    reused = photo(101, taken_local=taken, lat=PARIS[0] + 0.0003, lon=PARIS[1], quality=60, size=(480, 360))
    unrelated = photo(202, taken_local=taken, lat=PARIS[0], lon=PARIS[1] + 0.0004)
    records = [document_record(s, landing_key(first_no, "damage_1.jpg"), original),
               document_record(s, landing_key(first_no, "damage_2.jpg"), unrelated),
               document_record(s, landing_key(second_no, "IMG_0042.jpg"), reused)]
    produce_documents(s, records)

    alerts = alerts_for(stack, {first_id, second_id}, at_least=1, settle_s=8)
    assert [(a["claim_id"], a["rule"]) for a in alerts] == [(second_id, PHOTO_REUSED)]
    evidence = json.loads(alerts[0]["evidence_json"])
    assert evidence["document_id"] == records[2]["document_id"]
    assert evidence["other_document_id"] == records[0]["document_id"]
    assert evidence["other_claim_id"] == first_id and 0 <= evidence["distance_bits"] <= 8
    assert alerts[0]["source"] == "object_ingestor" and alerts[0]["severity"] == "high"

    links = read_topic(s, DOCUMENT_LINKS_TOPIC, decode=lambda m: decode_document_link(m.value()),
                       until=lambda ls: {r["document_id"] for r in records} <= {x["document_id"] for x in ls})
    mine = {x["document_id"]: x for x in links if x["document_id"] in {r["document_id"] for r in records}}
    assert {x["method"] for x in mine.values()} == {"key_path"}
    assert mine[records[2]["document_id"]]["claim_id"] == second_id


def test_uploads_flow_through_the_lambda_to_a_photo_reuse_alert(stack: EmbeddedStack) -> None:
    """The whole object stream, nothing produced by hand: upload -> S3 notification -> queue -> awslambdaric ->
    handler -> claims.documents.v1 -> object_ingestor -> claims.fraud-alerts.v1."""
    s = stack.settings
    loss = {"loss_time": utc("2026-03-11T14:00:00"), "loss_local_time": "2026-03-11T15:00:00", "lat": PARIS[0],
            "lon": PARIS[1]}
    _, [(first_id, first_no), (second_id, second_no)] = insert_claims(s, [loss, loss])
    taken = datetime(2026, 3, 11, 15, 20)
    s3 = s3_client(s)
    s3.put_object(Bucket=s.landing_bucket, Key=landing_key(first_no, "front bumper.jpg", "2026/03/11"),
                  Body=photo(111, taken_local=taken, lat=PARIS[0], lon=PARIS[1]))
    s3.put_object(Bucket=s.landing_bucket, Key=landing_key(second_no, "IMG_0107.jpg", "2026/03/12"),
                  Body=photo(111, taken_local=taken, lat=PARIS[0], lon=PARIS[1], quality=60, size=(480, 360)))
    alerts = alerts_for(stack, {first_id, second_id}, at_least=1, settle_s=5, timeout_s=180)
    assert [(a["claim_id"], a["rule"]) for a in alerts] == [(second_id, PHOTO_REUSED)]
    evidence = json.loads(alerts[0]["evidence_json"])
    assert evidence["other_claim_id"] == first_id


def test_photo_before_the_loss_or_far_from_it_raises_alerts(stack: EmbeddedStack) -> None:
    s = stack.settings
    with_local = {"loss_time": utc("2026-03-12T09:30:00"), "loss_local_time": "2026-03-12T10:30:00",
                  "lat": PARIS[0], "lon": PARIS[1]}
    utc_only = {"loss_time": utc("2026-03-12T09:30:00"), "lat": PARIS[0], "lon": PARIS[1]}
    _, [(local_id, local_no), (utc_id, utc_no)] = insert_claims(s, [with_local, utc_only])
    records = [
        # two days before the loss, 120 km away (Reims): both rules
        document_record(s, landing_key(local_no, "photo_1.jpg", "2026/03/12"),
                        photo(301, taken_local=datetime(2026, 3, 10, 9, 0), lat=49.2583, lon=4.0317)),
        # 40 min after the loss, on the spot: nothing
        document_record(s, landing_key(local_no, "photo_2.jpg", "2026/03/12"),
                        photo(302, taken_local=datetime(2026, 3, 12, 11, 10), lat=PARIS[0], lon=PARIS[1])),
        # no local loss time: 20 h before loss_time is beyond the 14 h zone slack + 2 h tolerance
        document_record(s, landing_key(utc_no, "photo_3.jpg", "2026/03/12"),
                        photo(303, taken_local=datetime(2026, 3, 11, 13, 30), lat=PARIS[0], lon=PARIS[1])),
        # 10 h before loss_time, zone unknown: could be the same moment somewhere east: nothing
        document_record(s, landing_key(utc_no, "photo_4.jpg", "2026/03/12"),
                        photo(304, taken_local=datetime(2026, 3, 11, 23, 30), lat=PARIS[0], lon=PARIS[1])),
    ]
    produce_documents(s, records)
    alerts = alerts_for(stack, {local_id, utc_id}, at_least=3, settle_s=8)
    got = sorted((a["claim_id"], a["rule"], json.loads(a["evidence_json"])["document_id"]) for a in alerts)
    assert got == sorted([(local_id, PHOTO_BEFORE_LOSS, records[0]["document_id"]),
                          (local_id, PHOTO_FAR, records[0]["document_id"]),
                          (utc_id, PHOTO_BEFORE_LOSS, records[2]["document_id"])])
    before = next(a for a in alerts if a["claim_id"] == local_id and a["rule"] == PHOTO_BEFORE_LOSS)
    assert json.loads(before["evidence_json"])["comparison"] == "loss_local_time"
    far = next(a for a in alerts if a["rule"] == PHOTO_FAR)
    assert 110 < json.loads(far["evidence_json"])["distance_km"] < 140


def test_documents_link_by_content_and_wait_for_a_claim_that_arrives_later(stack: EmbeddedStack) -> None:
    s = stack.settings
    loss = {"loss_time": utc("2026-03-14T08:00:00"), "loss_local_time": "2026-03-14T09:00:00", "lat": PARIS[0],
            "lon": PARIS[1]}
    policy_no, [(claim_id, number)] = insert_claims(s, [loss])
    by_number = document_record(s, landing_key("CLM-2026-0000000", "letter.txt"),
                                f"Re: claim {number}\nPlease find the estimate attached.\n".encode())
    by_policy = document_record(s, "incoming/other/estimate.txt",
                                f"Policy number: {policy_no}\nLoss date: 14/03/2026\n".encode())
    later_no = claim_number()
    early = document_record(s, landing_key(later_no, "claim_form.txt"), f"Claim number: {later_no}\n".encode())
    produce_documents(s, [by_number, by_policy, early])
    ids = {by_number["document_id"], by_policy["document_id"]}
    links = read_topic(s, DOCUMENT_LINKS_TOPIC, decode=lambda m: decode_document_link(m.value()),
                       until=lambda ls: ids <= {x["document_id"] for x in ls}, timeout_s=120, settle_s=5)
    mine = {x["document_id"]: x for x in links}
    assert (mine[by_number["document_id"]]["claim_id"], mine[by_number["document_id"]]["method"]) == \
        (claim_id, "claim_number")
    assert (mine[by_policy["document_id"]]["claim_id"], mine[by_policy["document_id"]]["method"]) == \
        (claim_id, "policy_loss_date")
    assert early["document_id"] not in mine  # its claim does not exist yet: kept, unlinked
    assert service(stack).impl.metrics()["evidence"]["documents_unlinked"] >= 1

    _, [(later_id, _)] = insert_claims(s, [{**loss, "claim_number": later_no}])
    links = read_topic(s, DOCUMENT_LINKS_TOPIC, decode=lambda m: decode_document_link(m.value()),
                       until=lambda ls: any(x["document_id"] == early["document_id"] for x in ls), timeout_s=120)
    relinked = [x for x in links if x["document_id"] == early["document_id"]]
    assert [(x["claim_id"], x["method"]) for x in relinked] == [(later_id, "claim_number")]


INVOICE_SEEDS = {"csv": 2, "jsonl": 13}  # batches with 6 and 5 invalid rows (the JSON-lines one has a cut line)


def invoice_sources(n: int) -> list[_InvoiceSource]:
    return [_InvoiceSource(f"CLM-2026-{i + 1:07d}", "" if i % 4 == 0 else "VF1RFB00X56789012",
                           Decimal("100.00") + i, datetime(2026, 3, 1).date()) for i in range(n)]


def rows_and_rejects(stack: EmbeddedStack, expected: dict[str, int], *, settle_s: float = 0.0
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows and rejects of the documents in `expected` (document_id -> lines), until each has that many."""
    s = stack.settings

    def decode(topic: str) -> Any:
        fn = decode_extract_row if topic == EXTRACT_ROWS_TOPIC else decode_extract_reject
        return lambda m: (r if (r := fn(m.value()))["document_id"] in expected else None)

    counts: dict[str, int] = {}
    rows = read_topic(s, EXTRACT_ROWS_TOPIC, decode=decode(EXTRACT_ROWS_TOPIC), until=lambda _: True, timeout_s=30)
    deadline = time.monotonic() + 120
    while True:
        rejects = read_topic(s, EXTRACT_REJECTS_TOPIC, decode=decode(EXTRACT_REJECTS_TOPIC), until=lambda _: True,
                             timeout_s=30)
        rows = read_topic(s, EXTRACT_ROWS_TOPIC, decode=decode(EXTRACT_ROWS_TOPIC), until=lambda _: True,
                          timeout_s=30, settle_s=settle_s)
        counts = {d: len({r["row_id"] for r in rows + rejects if r["document_id"] == d}) for d in expected}
        if counts == expected or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert counts == expected, diagnosis(stack)
    return rows, rejects


def test_invoice_extracts_expand_into_valid_rows_and_rejects_as_the_simulator_made_them(
        stack: EmbeddedStack) -> None:
    s = stack.settings
    records, invalid = [], {}
    for fmt, seed in INVOICE_SEEDS.items():
        body, bad = render_invoice_batch(random.Random(seed), invoice_sources(50), fmt=fmt, batch_no=seed,
                                         when=datetime(2026, 3, 2))
        key = f"incoming/2026/03/02/batches/repair_invoices_{uuid.uuid4().hex[:8]}.{fmt}"
        record = document_record(s, key, body, upload=True)
        assert record["mime_type"] == {"csv": "text/csv", "jsonl": "application/x-ndjson"}[fmt]
        records.append(record)
        invalid[record["document_id"]] = bad
    gone = document_record(s, "incoming/2026/03/02/batches/deleted.csv", b"invoice_id,amount\nX,1\nY,2\n")
    produce_documents(s, records + [gone])
    rows, rejects = rows_and_rejects(stack, {r["document_id"]: 50 for r in records})
    # The uploaded extracts are also processed by the stack's document Lambda, whose record carries the same
    # document_id: the expansion may run twice, and must then repeat the very same rows (same ids, same content).
    for record in records:
        d = record["document_id"]
        assert len({r["row_id"] for r in rejects if r["document_id"] == d}) == invalid[d]
        assert len({r["row_id"] for r in rows if r["document_id"] == d}) == 50 - invalid[d]
        by_id: dict[str, dict] = {}
        for r in rows + rejects:
            assert by_id.setdefault(r["row_id"], r) == r, "a repeated row differs from its first copy"
    assert all(r["row_id"] == f"{r['document_id']}:{r['line_number']}" for r in rows + rejects)
    assert {r["claim_number"] for r in rows} <= {f"CLM-2026-{i:07d}" for i in range(1, 51)}
    dead = read_topic(s, OBJECTS_DEAD_LETTER_TOPIC, decode=lambda m: json.loads(m.value()),
                      until=lambda ds: any(d["error_class"] == "ExtractObjectUnavailable" for d in ds))
    assert any("deleted.csv" in d["reason"] for d in dead)


def test_a_restart_repeats_no_alert_link_or_row(stack: EmbeddedStack) -> None:
    """Runs after the tests above (module order): everything they produced is on the topics already."""
    s = stack.settings

    def snapshot() -> tuple[list[str], list[tuple[str, str | None, str]], list[str]]:
        alerts = read_topic(s, FRAUD_ALERTS_TOPIC, decode=lambda m: decode_alert(m.value()), until=lambda _: True,
                            timeout_s=30, settle_s=3)
        links = read_topic(s, DOCUMENT_LINKS_TOPIC, decode=lambda m: decode_document_link(m.value()),
                           until=lambda _: True, timeout_s=30, settle_s=3)
        rows = read_topic(s, EXTRACT_ROWS_TOPIC, decode=lambda m: decode_extract_row(m.value()),
                          until=lambda _: True, timeout_s=30, settle_s=3)
        return (sorted(a["alert_id"] for a in alerts if a["source"] == "object_ingestor"),
                sorted((x["document_id"], x["claim_id"], x["method"]) for x in links),
                sorted(r["row_id"] for r in rows))

    before = snapshot()
    assert before[0] and before[1] and before[2]
    assert len(set(before[0])) == len(before[0]), "an alert was published twice"
    svc = service(stack)
    assert svc.stop()
    svc.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            evidence = svc.impl.metrics().get("evidence", {})
        except OSError:
            evidence = {}
        if evidence.get("caught_up") and evidence.get("pending_documents") == 0 and \
                evidence.get("documents_known", 0) >= 10:
            break
        time.sleep(1)
    else:
        raise AssertionError(f"evidence loop did not catch up after the restart\n{diagnosis(stack)}")
    assert snapshot() == before
