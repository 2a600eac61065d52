"""Landing objects for the document-processor tests: claim forms in several layouts, fonts and kinds of noise with
known contents, PDFs with and without a text layer, photos with EXIF, and hostile files. Pure and seeded."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from claimsctl.simulator.entities import generate_vin
from claimsctl.simulator.landing import ClaimFormInfo, render_damage_photo, render_form_image, render_form_scan

FONT_DIR = "/usr/share/fonts/truetype/dejavu/"


@dataclass(frozen=True)
class FormTruth:
    """What is written on a generated form, as the extractor should report it."""

    claim_number: str
    policy_number: str
    vin: str
    loss_date: date
    amounts: tuple[Decimal, ...]


def simulator_info(seed: int) -> ClaimFormInfo:
    rng = random.Random(f"document-tests/{seed}")
    return ClaimFormInfo(
        claim_number=f"CLM-2026-{rng.randrange(10**7):07d}",
        policy_number=f"POL-2025-{rng.randrange(10**7):07d}",
        vin=generate_vin(rng, rng.choice(("WVW", "WBA", "VF3", "ZFA")), 2019, seed),
        registration="AB-12-CD",
        vehicle="Peugeot 208 (2019)",
        loss_local_time=datetime(2026, 3, 12, 14, 5),
        loss_type="collision",
        claimed_amount=Decimal("1234.50"),
        description="Rear-ended at a junction, tailgate and bumper damaged.",
        loss_lat=38.7, loss_lon=-9.1,
    )


def simulator_scan(seed: int, fmt: str) -> tuple[bytes, FormTruth]:
    """The simulator's own form scan (DejaVu Sans, slight skew, speckle), PNG or JPEG."""
    info = simulator_info(seed)
    body = render_form_scan(info, random.Random(seed), fmt)
    return body, FormTruth(info.claim_number, info.policy_number, info.vin, info.loss_local_time.date(),
                           (info.claimed_amount,))


@lru_cache(maxsize=16)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_DIR + name, size)


# (font file, size, label/value rows as (label, value), rotation degrees, blur radius, JPEG quality or None)
LAYOUTS = {
    "serif_table_rotated_blurred": dict(
        font="DejaVuSerif.ttf", size=30, rotate=2.0, blur=0.8, jpeg=None,
        rows=[("Claim No.", "{claim}"), ("Policy", "{policy}"), ("Vehicle VIN", "{vin}"),
              ("Date of loss", "12 March 2026"), ("Estimate", "$1,234.56")],
        amounts=(Decimal("1234.56"),)),
    "mono_jpeg_artefacts": dict(
        font="DejaVuSansMono.ttf", size=28, rotate=-0.8, blur=0.0, jpeg=22,
        rows=[("Our ref", "{claim}"), ("Policy number", "{policy}"), ("VIN", "{vin}"),
              ("Loss date", "March 12, 2026"), ("Total repair", "EUR 1.234,56"), ("VAT", "259.26 EUR")],
        amounts=(Decimal("1234.56"), Decimal("259.26"))),
    "sans_dmy_noisy": dict(
        font="DejaVuSans.ttf", size=26, rotate=1.2, blur=0.5, jpeg=60,
        rows=[("Claim number", "{claim}"), ("Policy number", "{policy}"), ("VIN", "{vin}"),
              ("Loss date", "12/03/2026"), ("Amount claimed", "1234.50"), ("Excess", "€ 250,00")],
        amounts=(Decimal("1234.50"), Decimal("250.00"))),
}


def layout_scan(layout: str, seed: int) -> tuple[bytes, FormTruth]:
    """A claim form in one of LAYOUTS: two columns (label, value), its own font, skew, blur and compression."""
    spec = LAYOUTS[layout]
    rng = random.Random(f"layout/{layout}/{seed}")
    info = simulator_info(seed)
    width, height = 1240, 1754
    img = Image.new("L", (width, height), 246)
    draw = ImageDraw.Draw(img)
    draw.text((80, 70), "VEHICLE DAMAGE REPORT", fill=15, font=_font("DejaVuSans-Bold.ttf", 44))
    draw.rectangle((70, 200, width - 70, 200 + 80 * len(spec["rows"]) + 20), outline=90, width=2)
    y = 220
    for label, value in spec["rows"]:
        text = value.format(claim=info.claim_number, policy=info.policy_number, vin=info.vin)
        draw.text((100, y), label + ":", fill=rng.randint(20, 50), font=_font(spec["font"], spec["size"]))
        draw.text((520, y), text, fill=rng.randint(5, 40), font=_font(spec["font"], spec["size"]))
        y += 80
    img = img.rotate(spec["rotate"], resample=Image.Resampling.BICUBIC, fillcolor=240, expand=False)
    noise = Image.effect_noise((width, height), 24)
    img = Image.blend(img, noise, 0.06)
    if spec["blur"]:
        img = img.filter(ImageFilter.GaussianBlur(spec["blur"]))
    buf = io.BytesIO()
    if spec["jpeg"]:
        img.save(buf, "JPEG", quality=spec["jpeg"])
    else:
        img.save(buf, "PNG")
    return buf.getvalue(), FormTruth(info.claim_number, info.policy_number, info.vin, date(2026, 3, 12),
                                     spec["amounts"])


def text_pdf(pages: list[list[str]], **encryption: str) -> bytes:
    """A PDF with a text layer, one list of lines per page (fpdf2, reproducible bytes)."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2026, 3, 12))
    for lines in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "", 12)
        for line in lines:
            pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    if encryption:
        pdf.set_encryption(**encryption)
    return bytes(pdf.output())


def mixed_pdf(text_lines: list[str], scans: list[Image.Image]) -> bytes:
    """A PDF whose first page has a text layer (if `text_lines`) and whose other pages are images only."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(datetime(2026, 3, 12))
    if text_lines:
        pdf.add_page()
        pdf.set_font("Helvetica", "", 12)
        for line in text_lines:
            pdf.multi_cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    for scan in scans:
        pdf.add_page()
        pdf.image(scan, x=0, y=0, w=210, h=297)
    return bytes(pdf.output())


def form_image(seed: int) -> Image.Image:
    return render_form_image(simulator_info(seed), random.Random(seed))


def photo(seed: int, *, lat: float | None = 38.7223, lon: float | None = -9.1393,
          taken: datetime = datetime(2026, 3, 12, 14, 20, 5)) -> bytes:
    return render_damage_photo(random.Random(seed), taken_local=taken, lat=lat, lon=lon)


def near_duplicate(jpeg: bytes) -> bytes:
    """The same photo re-saved smaller, a little brighter and at a lower quality (as a messenger app would)."""
    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.Resampling.BILINEAR)
    img = img.point(lambda v: min(255, int(v * 1.06) + 4))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=55)
    return buf.getvalue()


def png_bomb(side: int = 20_000) -> bytes:
    """A tiny PNG that decodes to side x side pixels (1-bit: ~50 kB on disk for 400 Mpx)."""
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, "PNG")
    return buf.getvalue()
