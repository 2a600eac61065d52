"""PDFs with pypdfium2: open (encrypted and broken files refused), page text layers, page rendering for OCR."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from lambdas.document_processor.exceptions import CorruptContentError, EncryptedDocumentError

# A page whose text layer has fewer visible characters than this is treated as scanned (OCR it).
MIN_TEXT_LAYER_CHARS = 16


@contextmanager
def open_pdf(data: bytes) -> Iterator[pdfium.PdfDocument]:
    """The PDF document (closed afterwards); EncryptedDocumentError if it needs a password, CorruptContentError if
    pdfium cannot parse it."""
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if pdfium_c.FPDF_GetLastError() == pdfium_c.FPDF_ERR_PASSWORD or "password" in str(exc).lower():
            raise EncryptedDocumentError(
                "PDF is encrypted with a password: it cannot be read; ask the sender for an unprotected copy") from None
        raise CorruptContentError(f"PDF cannot be parsed (truncated or damaged): {exc}") from None
    try:
        yield pdf
    finally:
        pdf.close()


def is_encrypted(pdf: pdfium.PdfDocument) -> bool:
    """True for a PDF that has a security handler but opened without a password (owner-password-only)."""
    return pdfium_c.FPDF_GetSecurityHandlerRevision(pdf.raw) != -1


def page_text(page: pdfium.PdfPage) -> str:
    """The page's text layer ('' when it has none)."""
    textpage = page.get_textpage()
    try:
        return textpage.get_text_range().replace("\r\n", "\n").replace("\r", "\n")
    finally:
        textpage.close()


def has_text_layer(text: str) -> bool:
    return sum(1 for ch in text if not ch.isspace()) >= MIN_TEXT_LAYER_CHARS


def render_page(page: pdfium.PdfPage, *, dpi: int, max_pixels: int) -> tuple[Image.Image, bool]:
    """The page as a grey image at `dpi`, scaled down to stay within `max_pixels`; (image, was_scaled_down)."""
    width_pt, height_pt = page.get_size()
    scale = dpi / 72.0
    pixels = width_pt * scale * height_pt * scale
    reduced = pixels > max_pixels
    if reduced:
        scale *= (max_pixels / pixels) ** 0.5 * 0.999
    bitmap = page.render(scale=scale, grayscale=True)
    try:
        return bitmap.to_pil().copy(), reduced
    finally:
        bitmap.close()
