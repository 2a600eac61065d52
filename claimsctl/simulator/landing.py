"""Landing-zone files: claim-form scans (PNG/JPEG), PDF forms, damage photos with EXIF, invoice batches.

Generation (`LandingPlanner`, the render functions) is pure: bytes from a seeded RNG and the planned actions.
`LandingUploader` is the only part that talks to S3. Keys:
    incoming/<yyyy>/<mm>/<dd>/<claim_number>/<name>      documents of one claim (date = report date, UTC)
    incoming/<yyyy>/<mm>/<dd>/batches/<name>             repair-shop invoice extracts (CSV, JSON lines)
Some names contain a space or a non-ASCII character on purpose: S3 event keys arrive URL-encoded.
"""

from __future__ import annotations

import csv
import io
import json
import random
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from claimsctl.simulator.actions import AddPayment, FileClaim, TransitionClaim
from claimsctl.simulator.exceptions import LandingBucketMissingError

try:  # Text-layer PDFs when fpdf2 is installed; otherwise the scan is saved as an image-only PDF.
    from fpdf import FPDF
except ImportError:  # pragma: no cover - depends on the environment
    FPDF = None

_FORM_NAMES = ("claim_form", "claim form scan", "formulário_sinistro", "Schadenmeldung", "déclaration_sinistre")
_PHOTO_NAMES = ("damage_{i}", "photo dégâts {i}", "Schadenfoto_{i}", "IMG_{n:04d}", "foto_danno_{i}")
_PHONES = (("Apple", "iPhone 13"), ("Apple", "iPhone 15 Pro"), ("samsung", "SM-S911B"), ("Google", "Pixel 7"),
           ("Xiaomi", "Redmi Note 12"), ("OnePlus", "CPH2449"))
_SHOPS = ("AutoRepar Lda", "Carrocerías Núñez", "Garage Dupont", "Karosserie Müller GmbH", "Officina Rossi",
          "Schadeherstel de Boer", "Glass Express", "Taller Ortega")
_GREY_LEVELS = [v // 16 * 16 for v in range(256)]
INVOICE_FIELDS = ("invoice_id", "claim_number", "repair_shop", "invoice_date", "amount", "vat_amount", "currency",
                  "vin")


def landing_key(day: date, claim_number: str, name: str) -> str:
    return f"incoming/{day:%Y}/{day:%m}/{day:%d}/{claim_number}/{name}"


def batch_key(day: date, name: str) -> str:
    return f"incoming/{day:%Y}/{day:%m}/{day:%d}/batches/{name}"


@dataclass(frozen=True)
class LandingFile:
    key: str
    body: bytes
    content_type: str


@dataclass(frozen=True)
class ClaimFormInfo:
    """What a claimant writes on the form."""

    claim_number: str
    policy_number: str
    vin: str
    registration: str
    vehicle: str
    loss_local_time: datetime
    loss_type: str
    claimed_amount: Decimal
    description: str
    loss_lat: float | None
    loss_lon: float | None


def form_lines(info: ClaimFormInfo) -> list[str]:
    """The text lines of a claim form, in order (what OCR should find)."""
    return [
        f"Claim number: {info.claim_number}",
        f"Policy number: {info.policy_number}",
        f"VIN: {info.vin}",
        f"Registration: {info.registration}",
        f"Vehicle: {info.vehicle}",
        f"Loss date: {info.loss_local_time:%Y-%m-%d %H:%M}",
        f"Loss type: {info.loss_type}",
        f"Amount claimed: EUR {info.claimed_amount:.2f}",
        f"Description: {info.description}",
    ]


@lru_cache(maxsize=8)
def _font(size: int, bold: bool = False) -> Any:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def render_form_image(info: ClaimFormInfo, rng: random.Random) -> Image.Image:
    """A scanned-looking form: grey paper, dark text, slight skew and noise; legible for tesseract."""
    width, height = 1240, 1754  # A4 at 150 dpi
    img = Image.new("L", (width, height), 248)
    draw = ImageDraw.Draw(img)
    draw.text((90, 80), "MOTOR CLAIM FORM", fill=20, font=_font(46, bold=True))
    draw.text((90, 150), "Northwind Mutual Insurance - First notice of loss", fill=60, font=_font(24))
    draw.line((90, 200, width - 90, 200), fill=80, width=3)
    y = 250
    for line in form_lines(info):
        draw.text((90, y), line, fill=rng.randint(10, 45), font=_font(30))
        y += 62
    draw.text((90, height - 200), "Signature: ____________________", fill=40, font=_font(26))
    img = img.rotate(rng.uniform(-1.2, 1.2), resample=Image.Resampling.BILINEAR, fillcolor=235)
    dx, dy = rng.randrange(64), rng.randrange(64)
    speckle = _speckle(width + 64, height + 64).crop((dx, dy, dx + width, dy + height))
    return Image.blend(img, speckle, 0.08)


@lru_cache(maxsize=2)
def _speckle(width: int, height: int) -> Image.Image:
    # Generated once (it is the slow part of a scan) and cropped at a random offset per form.
    return Image.effect_noise((width, height), 18)


def render_form_scan(info: ClaimFormInfo, rng: random.Random, fmt: str) -> bytes:
    """The form as a PNG or JPEG scan."""
    buf = io.BytesIO()
    img = render_form_image(info, rng)
    if fmt == "PNG":
        # 16 grey levels, like a scanner's document mode: a readable scan in ~100 kB instead of ~1 MB.
        img.point(_GREY_LEVELS).save(buf, "PNG", compress_level=1)
    else:
        img.save(buf, "JPEG", quality=rng.randint(70, 88))
    return buf.getvalue()


def render_form_pdf(info: ClaimFormInfo, rng: random.Random, *, when: datetime) -> bytes:
    """The form as a PDF with a text layer (fpdf2), or an image-only PDF when fpdf2 is missing."""
    if FPDF is None:
        buf = io.BytesIO()
        render_form_image(info, rng).convert("RGB").save(buf, "PDF", resolution=150.0)
        return buf.getvalue()
    pdf = FPDF(format="A4")
    pdf.set_creation_date(when)  # reproducible bytes: no wall-clock creation date
    pdf.set_creator("claimsctl simulate")
    pdf.add_page()
    # Core Helvetica: embedding a TrueType font costs ~150 ms per file; the text layer is what matters.
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, "MOTOR CLAIM FORM", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    for line in form_lines(info):
        pdf.multi_cell(0, 8, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _latin1(text: str) -> str:
    """Text the PDF core fonts can show: letters outside Latin-1 lose their accents (Š -> S)."""
    out = []
    for ch in text:
        if ord(ch) < 256:
            out.append(ch)
        else:
            base = unicodedata.normalize("NFKD", ch)[0]
            out.append(base if ord(base) < 256 else "?")
    return "".join(out)


def _gps_rational(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600, 2)
    return (float(degrees), float(minutes), seconds)


def render_damage_photo(
    rng: random.Random, *, taken_local: datetime, lat: float | None, lon: float | None
) -> bytes:
    """A JPEG 'photo' of a damaged car with EXIF DateTimeOriginal, GPS position and camera Make/Model."""
    w, h = 800, 600
    # Scenes differ in their coarse structure (horizon, scenery, framing, car size), as real photos do: a perceptual
    # hash looks at exactly that, so identical compositions would make unrelated claims' photos look re-used.
    horizon = int(h * rng.uniform(0.35, 0.75))
    img = Image.new("RGB", (w, h), tuple(rng.randint(60, 230) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(2, 6)):  # buildings, walls, hedges behind the car
        bx, bw, bh = rng.randint(-200, w), rng.randint(120, 420), rng.randint(60, horizon)
        draw.rectangle((bx, horizon - bh, bx + bw, horizon), fill=tuple(rng.randint(20, 240) for _ in range(3)))
    draw.rectangle((0, horizon, w, h), fill=(rng.randint(40, 130),) * 3)  # road or car park
    scale = rng.uniform(0.55, 1.45)  # wide shot to close-up
    body = tuple(rng.randint(30, 220) for _ in range(3))
    x0 = rng.randint(int(-200 * scale), int(w - 400 * scale))
    y0 = horizon - int(rng.uniform(0.2, 0.9) * 170 * scale)

    def box(*pts: float) -> list[tuple[float, float]]:
        return [(x0 + pts[i] * scale, y0 + pts[i + 1] * scale) for i in range(0, len(pts), 2)]

    draw.rounded_rectangle(box(0, 0, 520, 170), radius=int(40 * scale), fill=body)
    draw.polygon(box(120, 0, 190, -90, 380, -90, 450, 0), fill=body)
    for cx in (110, 420):
        draw.ellipse(box(cx - 50, 120, cx + 50, 220), fill=(20, 20, 20))
    for _ in range(rng.randint(3, 9)):  # dents and scratches
        sx, sy = rng.randint(0, 500), rng.randint(0, 160)
        draw.line(box(sx, sy, sx + rng.randint(-90, 90), sy + rng.randint(-40, 40)), fill=(200, 200, 200),
                  width=max(1, int(rng.randint(2, 6) * scale)))
    make, model = rng.choice(_PHONES)
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    exif[0x0132] = f"{taken_local:%Y:%m:%d %H:%M:%S}"
    exif.get_ifd(0x8769)[0x9003] = f"{taken_local:%Y:%m:%d %H:%M:%S}"  # DateTimeOriginal
    if lat is not None and lon is not None:
        gps = exif.get_ifd(0x8825)
        gps[0x0000] = b"\x02\x03\x00\x00"  # GPSVersionID
        gps[0x0001] = "N" if lat >= 0 else "S"
        gps[0x0002] = _gps_rational(lat)
        gps[0x0003] = "E" if lon >= 0 else "W"
        gps[0x0004] = _gps_rational(lon)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=rng.randint(75, 90), exif=exif)
    return buf.getvalue()


@dataclass
class _InvoiceSource:
    claim_number: str
    vin: str
    amount: Decimal
    paid_on: date


def render_invoice_batch(
    rng: random.Random, sources: list[_InvoiceSource], *, fmt: str, batch_no: int, when: datetime
) -> tuple[bytes, int]:
    """A CSV or JSON-lines extract of repair-shop invoices; returns (body, number of deliberately invalid rows)."""
    rows: list[dict[str, Any]] = []
    for i, src in enumerate(sources):
        vat = (src.amount * Decimal("0.21")).quantize(Decimal("0.01"))
        rows.append({
            "invoice_id": f"INV-{batch_no:05d}-{i:04d}",
            "claim_number": src.claim_number,
            "repair_shop": rng.choice(_SHOPS),
            "invoice_date": (src.paid_on - timedelta(days=rng.randint(0, 5))).isoformat(),
            "amount": f"{src.amount:.2f}",
            "vat_amount": f"{vat:.2f}",
            "currency": "EUR",
            "vin": src.vin,
        })
    invalid = 0
    defects = (
        ("claim_number", ""),
        ("claim_number", "CLM-0000-0000000"),
        ("amount", "-125.00"),
        ("amount", "1.234,5O"),
        ("invoice_date", f"{when.year}-02-30"),
        ("vin", "WVWZZZ1KZ6W00000I"),
    )
    for row in rows:
        if rng.random() < 0.06:
            name, value = rng.choice(defects)
            row[name] = value
            invalid += 1
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=INVOICE_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().encode("utf-8"), invalid
    lines = [json.dumps(r, ensure_ascii=False) for r in rows]
    if lines and rng.random() < 0.1:  # a truncated line, as when an export is cut off mid-write
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
        invalid += 1
    return ("\n".join(lines) + "\n").encode("utf-8"), invalid


@dataclass
class LandingPlanner:
    """Decides which files land for the planned actions; pure (bytes only, no uploads)."""

    seed: str
    document_probability: float = 0.35
    batch_interval_s: float = 15.0
    rng: random.Random = field(init=False)
    _drafts: dict[Any, FileClaim] = field(default_factory=dict, init=False)
    _vins: dict[Any, tuple[str, str]] = field(default_factory=dict, init=False)
    _invoices: list[_InvoiceSource] = field(default_factory=list, init=False)
    _next_batch_s: float = field(default=0.0, init=False)
    _batches: int = field(default=0, init=False)
    _photos: int = field(default=0, init=False)
    invalid_rows: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"claims-simulator/{self.seed}/landing")
        self._next_batch_s = self.batch_interval_s

    def observe(self, action: Any) -> list[LandingFile]:
        """Files caused by one planned action (claim documents when a claim is notified)."""
        if isinstance(action, FileClaim):
            if action.vehicle is not None:
                self._vins[action.claim.claim_id] = (action.claim.claim_number, action.vehicle.vin)
            if action.claim.status == "draft":
                self._drafts[action.claim.claim_id] = action
                return []
            return self._documents(action, action.at)
        if isinstance(action, TransitionClaim):
            filed = self._drafts.pop(action.claim_id, None)
            if filed is not None and action.to_status == "fnol":
                return self._documents(filed, action.at)
            if action.to_status == "closed":
                self._vins.pop(action.claim_id, None)
        if isinstance(action, AddPayment) and action.payee == "repairer":
            _, vin = self._vins.get(action.claim_id, (action.claim_number, ""))
            self._invoices.append(_InvoiceSource(action.claim_number, vin, action.amount, action.value_date))
        return []

    def due_batches(self, now_s: float, now: datetime) -> list[LandingFile]:
        """Invoice extracts due by simulated time `now_s` (one every `batch_interval_s`, if any invoices)."""
        if now_s < self._next_batch_s:
            return []
        self._next_batch_s = now_s + self.batch_interval_s
        if not self._invoices:
            return []
        self._batches += 1
        fmt = "csv" if self._batches % 2 else "jsonl"
        body, invalid = render_invoice_batch(self.rng, self._invoices, fmt=fmt, batch_no=self._batches, when=now)
        self.invalid_rows += invalid
        self._invoices = []
        name = f"repair_invoices_{now:%Y%m%dT%H%M%S}_{self._batches:04d}.{fmt}"
        ctype = "text/csv" if fmt == "csv" else "application/x-ndjson"
        return [LandingFile(batch_key(now.date(), name), body, ctype)]

    def _documents(self, filed: FileClaim, at: datetime) -> list[LandingFile]:
        rng, claim = self.rng, filed.claim
        if rng.random() >= self.document_probability:
            return []
        vehicle = filed.vehicle
        local = claim.loss_local_time or claim.loss_time.replace(tzinfo=None)
        info = ClaimFormInfo(
            claim_number=claim.claim_number,
            policy_number=filed.policy.policy_number,
            vin=vehicle.vin if vehicle else "",
            registration=vehicle.registration if vehicle else "",
            vehicle=f"{vehicle.make} {vehicle.model} ({vehicle.model_year})" if vehicle else "",
            loss_local_time=local,
            loss_type=claim.loss_type,
            claimed_amount=claim.claimed_amount,
            description=claim.description or "",
            loss_lat=claim.loss_lat,
            loss_lon=claim.loss_lon,
        )
        day = at.date()
        files = []
        kind = rng.choices(("PNG", "JPEG", "PDF"), weights=(0.45, 0.35, 0.2))[0]
        stem = rng.choice(_FORM_NAMES)
        if kind == "PDF":
            body, ext, ctype = render_form_pdf(info, rng, when=at), "pdf", "application/pdf"
        else:
            body = render_form_scan(info, rng, kind)
            ext, ctype = ("png", "image/png") if kind == "PNG" else ("jpg", "image/jpeg")
        files.append(LandingFile(landing_key(day, claim.claim_number, f"{stem}.{ext}"), body, ctype))
        if claim.loss_type != "theft":
            for i in range(1, rng.choices((0, 1, 2, 3), weights=(0.2, 0.4, 0.3, 0.1))[0] + 1):
                self._photos += 1
                taken = local + timedelta(minutes=rng.uniform(1, 40))
                lat = None if claim.loss_lat is None else claim.loss_lat + rng.gauss(0, 0.0002)
                lon = None if claim.loss_lon is None else claim.loss_lon + rng.gauss(0, 0.0002)
                name = rng.choice(_PHOTO_NAMES).format(i=i, n=self._photos) + ".jpg"
                files.append(LandingFile(landing_key(day, claim.claim_number, name),
                                         render_damage_photo(rng, taken_local=taken, lat=lat, lon=lon),
                                         "image/jpeg"))
        return files


class LandingUploader:
    """Uploads landing files to the bucket from a small thread pool (uploads overlap with generation)."""

    def __init__(self, s3: Any, bucket: str, *, workers: int = 4) -> None:
        self.s3 = s3
        self.bucket = bucket
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="landing-upload")
        self._pending: list[Future[None]] = []
        self.uploaded = 0
        self.bytes = 0

    def check_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except Exception as exc:  # botocore raises ClientError / EndpointConnectionError
            raise LandingBucketMissingError(
                f"landing bucket {self.bucket!r} is not reachable ({exc}); start the stack (`claimsctl stack up`) "
                "or set CLAIMS_LANDING_BUCKET / CLAIMS_S3_ENDPOINT"
            ) from exc

    def submit(self, files: list[LandingFile]) -> None:
        for f in files:
            self.bytes += len(f.body)
            self._pending.append(self._pool.submit(self._put, f))
        self._reap(block=len(self._pending) > 64)

    def _put(self, f: LandingFile) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f.key, Body=f.body, ContentType=f.content_type)

    def _reap(self, *, block: bool) -> None:
        still = []
        for fut in self._pending:
            if block or fut.done():
                fut.result()  # re-raises an upload error
                self.uploaded += 1
            else:
                still.append(fut)
        self._pending = still

    def close(self) -> None:
        try:
            self._reap(block=True)
        finally:
            self._pool.shutdown(wait=True)
