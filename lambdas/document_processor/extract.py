"""`extract_document`: one object's bytes in, one DocumentRecord out. Unprocessable objects come back quarantined
with a human reason; nothing about the object's content makes it raise."""

from __future__ import annotations

import hashlib
import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image, ImageOps

from lambdas.document_processor import images, ocr, pdf, sniffing
from lambdas.document_processor.exceptions import (
    EmptyObjectError,
    ObjectTooLargeError,
    OcrUnavailableError,
    TimeBudgetExceededError,
    TooManyPagesError,
    UnprocessableDocument,
    UnsupportedContentError,
)
from lambdas.document_processor.fields import extract_fields
from lambdas.document_processor.limits import ProcessingLimits
from lambdas.document_processor.record import (
    OK,
    QUARANTINED,
    DocumentRecord,
    ExifInfo,
    ObjectRef,
    TextSource,
    document_id,
    document_id_for,
)

log = logging.getLogger(__name__)

_SUFFIX = {sniffing.PNG: ".png", sniffing.JPEG: ".jpg", sniffing.TIFF: ".tif"}


@dataclass
class _Content:
    """What a content processor found (everything but identity, status and fields)."""

    pages: int | None = None
    width: int | None = None
    height: int | None = None
    exif: ExifInfo = field(default_factory=ExifInfo)
    phash: str | None = None
    text: str = ""
    text_source: TextSource = "none"
    ocr_confidence: float | None = None
    notes: list[str] = field(default_factory=list)


class _Budget:
    """The per-object time budget; each OCR run gets min(per-page timeout, what is left)."""

    def __init__(self, limits: ProcessingLimits, clock: Callable[[], float]) -> None:
        self.limits, self.clock = limits, clock
        self.deadline = clock() + limits.time_budget_s

    def ocr(self, path: str, what: str) -> ocr.OcrResult:
        left = self.deadline - self.clock()
        if left <= 0.05:
            raise TimeBudgetExceededError(
                f"time budget of {self.limits.time_budget_s:g} s (CLAIMS_DOCUMENT_TIME_BUDGET_S) used up before OCR "
                f"of {what}")
        timeout = min(self.limits.ocr_timeout_s, left)
        try:
            return ocr.ocr_file(path, timeout_s=timeout)
        except ocr.OcrTimeoutError:
            if timeout < self.limits.ocr_timeout_s:
                raise TimeBudgetExceededError(
                    f"OCR of {what} stopped: the object's time budget of {self.limits.time_budget_s:g} s "
                    "(CLAIMS_DOCUMENT_TIME_BUDGET_S) ran out") from None
            raise TimeBudgetExceededError(
                f"OCR of {what} took longer than {self.limits.ocr_timeout_s:g} s "
                "(CLAIMS_DOCUMENT_OCR_TIMEOUT_S) and was stopped") from None


def extract_document(data: bytes, name: str, limits: ProcessingLimits | None = None, *,
                     source: ObjectRef | None = None,
                     clock: Callable[[], float] = time.monotonic) -> DocumentRecord:
    """The document record of one object: type sniffed from the bytes, metadata, text (text layer or OCR), fields.

    `name` is the object's key or file name (only used to note a misleading extension). `source` gives the
    deterministic document_id; without it the id derives from the name and the content hash. Raises only
    OcrUnavailableError (tesseract missing: a deployment problem); every problem of the object itself yields a
    record with status "quarantined" and the reason.
    """
    limits = limits or ProcessingLimits()
    sha256 = hashlib.sha256(data).hexdigest()
    mime = sniffing.sniff_mime_type(data) if data else sniffing.UNKNOWN
    doc_id = document_id_for(source) if source else document_id("local", name, sha256)
    identity = dict(document_id=doc_id, sha256=sha256, mime_type=mime, size_bytes=len(data), name=name,
                    source=source)
    notes: list[str] = []
    claimed = sniffing.extension_type(name)
    # CSV vs plain text is a matter of heuristics, not a mislabel worth noting.
    if data and claimed and claimed != mime and not {claimed, mime} <= sniffing.TEXT_TYPES:
        notes.append(f"file name says {claimed} but the content is {mime}; processed by content")
    try:
        content = _process(data, mime, limits, _Budget(limits, clock))
    except UnprocessableDocument as exc:
        return DocumentRecord(**identity, status=QUARANTINED, reason=str(exc), notes=tuple(notes))
    except OcrUnavailableError:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser failing on input nobody anticipated must not stop the stream
        log.exception("unexpected failure processing %r", name)
        return DocumentRecord(**identity, status=QUARANTINED, notes=tuple(notes),
                              reason=f"unexpected {type(exc).__name__} while processing {mime}: {exc}")
    text = content.text
    if len(text) > limits.max_text_chars:
        content.notes.append(f"text cut to {limits.max_text_chars} of {len(text)} characters "
                             "(CLAIMS_DOCUMENT_MAX_TEXT_CHARS)")
        text = text[:limits.max_text_chars]
    return DocumentRecord(
        **identity, status=OK, pages=content.pages, width=content.width, height=content.height, exif=content.exif,
        phash=content.phash, text=text, text_source=content.text_source, ocr_confidence=content.ocr_confidence,
        fields=extract_fields(text), notes=tuple(notes + content.notes),
    )


def _process(data: bytes, mime: str, limits: ProcessingLimits, budget: _Budget) -> _Content:
    if not data:
        raise EmptyObjectError("empty object (0 bytes): nothing to process; the upload was probably interrupted")
    if len(data) > limits.max_object_bytes:
        raise ObjectTooLargeError(
            f"object is {len(data):,} bytes, over the {limits.max_object_bytes:,} byte limit "
            "(CLAIMS_DOCUMENT_MAX_BYTES)")
    if mime in sniffing.IMAGE_TYPES:
        return _process_image(data, mime, limits, budget)
    if mime == sniffing.PDF:
        return _process_pdf(data, limits, budget)
    if mime in sniffing.TEXT_TYPES:
        return _Content(text=sniffing.decode_text(data), text_source="plain")
    if mime == sniffing.MARKUP:
        raise UnsupportedContentError(
            "HTML/SVG/XML markup: web pages are not accepted as claim documents (they can carry scripts); upload the "
            "document as PDF, image or text")
    if mime == sniffing.ZIP:
        raise UnsupportedContentError(
            "zip archive (or a zip-based office file): archives are not unpacked; upload the documents one by one "
            "as PDF, image or text")
    raise UnsupportedContentError(
        f"unrecognised content (first bytes {data[:8].hex(' ')}): not a PNG, JPEG, TIFF, PDF, CSV, JSON lines or "
        "UTF-8 text")


def _process_image(data: bytes, mime: str, limits: ProcessingLimits, budget: _Budget) -> _Content:
    facts = images.inspect_image(data, max_pixels=limits.max_image_pixels)
    if facts.frames > limits.max_pages:
        raise TooManyPagesError(
            f"image has {facts.frames} frames/pages, over the {limits.max_pages} page limit "
            "(CLAIMS_DOCUMENT_MAX_PAGES)")
    content = _Content(pages=facts.frames, width=facts.width, height=facts.height, exif=facts.exif,
                       phash=facts.phash)
    if not facts.looks_like_document:
        return content  # a photo: metadata and hash only
    if facts.orientation != 1:
        # tesseract ignores the EXIF orientation: hand it the upright page.
        upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        with ocr.image_file(image=upright) as path:
            result = budget.ocr(path, "the image")
        content.notes.append(f"EXIF orientation {facts.orientation}: page turned upright for OCR")
    else:
        with ocr.image_file(data, suffix=_SUFFIX[mime]) as path:
            result = budget.ocr(path, "the image" if facts.frames == 1 else f"{facts.frames} pages")
    content.text, content.text_source, content.ocr_confidence = result.text, "ocr", result.confidence
    return content


def _process_pdf(data: bytes, limits: ProcessingLimits, budget: _Budget) -> _Content:
    with pdf.open_pdf(data) as document:
        pages = len(document)
        if pages > limits.max_pages:
            raise TooManyPagesError(
                f"PDF has {pages} pages, over the {limits.max_pages} page limit (CLAIMS_DOCUMENT_MAX_PAGES)")
        content = _Content(pages=pages)
        if pdf.is_encrypted(document):
            content.notes.append("PDF is encrypted without a user password (owner restrictions only): read as is")
        texts: list[str] = []
        layer_pages = ocr_pages = ocr_words = 0
        weighted_conf = 0.0
        for number in range(pages):
            page = document[number]
            try:
                text = pdf.page_text(page)
                if pdf.has_text_layer(text):
                    layer_pages += 1
                else:
                    image, reduced = pdf.render_page(page, dpi=limits.ocr_dpi, max_pixels=limits.max_image_pixels)
                    if reduced:
                        content.notes.append(f"page {number + 1} rendered below {limits.ocr_dpi} dpi to stay "
                                             "within CLAIMS_DOCUMENT_MAX_PIXELS")
                    with ocr.image_file(image=image) as path:
                        result = budget.ocr(path, f"page {number + 1} of {pages}")
                    text = result.text
                    ocr_pages += 1
                    if result.confidence is not None:
                        weighted_conf += result.confidence * result.words
                        ocr_words += result.words
            finally:
                page.close()
            texts.append(text.strip())
    content.text = "\n\f\n".join(texts).strip()
    content.text_source = ("mixed" if layer_pages and ocr_pages else "text_layer" if layer_pages
                           else "ocr" if ocr_pages else "none")
    content.ocr_confidence = round(weighted_conf / ocr_words, 2) if ocr_words else None
    return content
