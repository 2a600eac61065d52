"""OCR with tesseract through pytesseract: text and mean word confidence from ONE `image_to_data` run per page.

Images are handed to tesseract as files (the object's own bytes when possible), never re-encoded to PNG by
pytesseract: on a 0.3-0.5 s page, a PNG encode would add several percent.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytesseract
from PIL import Image

from lambdas.document_processor.exceptions import CorruptContentError, OcrUnavailableError

# tesseract's OpenMP threads slow single-page OCR on few cores (0.3-0.5 s/page with 1 thread vs 0.8-1.4 s).
# Set before the first tesseract subprocess, which inherits the environment.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class OcrTimeoutError(Exception):
    """tesseract was killed after the allowed seconds (internal: the caller words the reason)."""


@dataclass(frozen=True)
class OcrResult:
    text: str
    confidence: float | None  # mean confidence (0-100) of the recognised words; None when there are none
    words: int


def ocr_file(path: str, *, timeout_s: float, lang: str = "eng") -> OcrResult:
    """OCR an image file (PNG, JPEG, TIFF, PNM): text with line breaks and the mean word confidence."""
    try:
        data = pytesseract.image_to_data(path, lang=lang, output_type=pytesseract.Output.DICT, timeout=timeout_s)
    except pytesseract.TesseractNotFoundError as exc:
        raise OcrUnavailableError(f"tesseract is not installed or not on PATH: {exc}") from exc
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            raise OcrTimeoutError(str(exc)) from None
        raise
    except pytesseract.TesseractError as exc:
        message = str(exc.message) if hasattr(exc, "message") else str(exc)
        if "traineddata" in message or "language" in message.lower():
            raise OcrUnavailableError(f"tesseract cannot load language {lang!r}: {message}") from exc
        raise CorruptContentError(f"tesseract could not read the image: {message.strip()[:300]}") from None
    return ocr_result_from_data(data)


def ocr_result_from_data(data: dict[str, list[Any]]) -> OcrResult:
    """Rebuild text (one line per tesseract line, blank line between blocks) and mean word confidence from
    image_to_data's columns."""
    lines: list[str] = []
    current: tuple[int, int, int] | None = None
    block: int | None = None
    words: list[str] = []
    confidences: list[float] = []
    for i, word in enumerate(data.get("text", [])):
        word = (word or "").strip() if isinstance(word, str) else str(word).strip()
        conf = float(data["conf"][i])
        if not word or conf < 0:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        if key != current:
            if words:
                lines.append(" ".join(words))
            if block is not None and key[0] != block:
                lines.append("")
            current, block, words = key, key[0], []
        words.append(word)
        confidences.append(conf)
    if words:
        lines.append(" ".join(words))
    confidence = round(sum(confidences) / len(confidences), 2) if confidences else None
    return OcrResult(text="\n".join(lines), confidence=confidence, words=len(confidences))


@contextmanager
def image_file(data: bytes | None = None, *, image: Image.Image | None = None, suffix: str = ".img") -> Iterator[str]:
    """A temporary file for tesseract: the given bytes as they are, or a PIL image as uncompressed PNM (fast to
    write, read natively by leptonica). Removed afterwards."""
    fd, path = tempfile.mkstemp(prefix="claims-ocr-", suffix=suffix if image is None else ".pnm")
    try:
        with os.fdopen(fd, "wb") as sink:
            if image is None:
                sink.write(data or b"")
            else:
                (image if image.mode in ("L", "RGB", "1") else image.convert("RGB")).save(sink, "PPM")
        yield path
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
