"""Document processing core of the object-stream Lambda: bytes of one landing object in, one document record out.

Pure functions (content sniffing, hashing, image and PDF metadata, OCR, field extraction) with no S3, queue or
Kafka I/O; the Lambda handler and `claimsctl extract-document` both call `extract_document`.
"""

from lambdas.document_processor.extract import extract_document
from lambdas.document_processor.limits import ProcessingLimits
from lambdas.document_processor.record import DocumentRecord, ExifInfo, ExtractedFields, ObjectRef, document_id

__all__ = [
    "DocumentRecord", "ExifInfo", "ExtractedFields", "ObjectRef", "ProcessingLimits", "document_id",
    "extract_document",
]
