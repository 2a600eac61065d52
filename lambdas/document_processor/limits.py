"""Safety limits for processing one object; defaults match PlatformSettings' document_* settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claims_shared.settings import PlatformSettings


@dataclass(frozen=True)
class ProcessingLimits:
    """What one object may cost. Anything over a limit is quarantined with a reason, never half-processed."""

    max_object_bytes: int = 25 * 1024 * 1024
    max_pages: int = 20
    # Pixels of one image or rendered page (width x height). 40 Mpx covers a 300 dpi A3 scan and phone photos.
    max_image_pixels: int = 40_000_000
    # Seconds one tesseract run may take (per page), and the whole object (all pages, OCR included).
    ocr_timeout_s: float = 30.0
    time_budget_s: float = 90.0
    # Resolution PDF pages without a text layer are rendered at for OCR.
    ocr_dpi: int = 200
    # Text kept in the record (Kafka messages should stay well under 1 MB).
    max_text_chars: int = 200_000

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> ProcessingLimits:
        """The limits configured by CLAIMS_DOCUMENT_* variables."""
        return cls(
            max_object_bytes=settings.document_max_bytes,
            max_pages=settings.document_max_pages,
            max_image_pixels=settings.document_max_pixels,
            ocr_timeout_s=settings.document_ocr_timeout_s,
            time_budget_s=settings.document_time_budget_s,
            ocr_dpi=settings.document_ocr_dpi,
            max_text_chars=settings.document_max_text_chars,
        )
