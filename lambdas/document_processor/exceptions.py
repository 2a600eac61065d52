"""Why an object cannot be processed.

`UnprocessableDocument` and its subclasses are about the object itself (too big, truncated, encrypted, ...):
`extract_document` turns them into a quarantined record whose reason is the message, so they never escape.
`OcrUnavailableError` is about the deployment (no tesseract binary or language data): it is raised, because
quarantining every object for it would hide a broken image; the caller should fail and retry later.
"""

from __future__ import annotations


class UnprocessableDocument(Exception):
    """The object cannot be processed; the message is the human reason stored in the quarantined record."""


class EmptyObjectError(UnprocessableDocument):
    pass


class ObjectTooLargeError(UnprocessableDocument):
    pass


class UnsupportedContentError(UnprocessableDocument):
    """Content we do not process (zip archives, unknown binary formats)."""


class CorruptContentError(UnprocessableDocument):
    """Bytes that claim a format but do not decode as it (truncated files, broken structure)."""


class DecompressionBombError(UnprocessableDocument):
    """An image (or rendered page) whose pixel count exceeds the limit."""


class TooManyPagesError(UnprocessableDocument):
    pass


class EncryptedDocumentError(UnprocessableDocument):
    pass


class TimeBudgetExceededError(UnprocessableDocument):
    """OCR did not finish within the per-object time budget."""


class OcrUnavailableError(RuntimeError):
    """tesseract (or its language data) is missing or broken on this machine: a deployment problem, not the object's."""
