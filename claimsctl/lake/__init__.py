"""The lakehouse seen from outside the compactor: maintenance (delta-rs) and reconciliation against PostgreSQL."""

from __future__ import annotations

from claims_shared.clients.aws import delta_storage_options
from claims_shared.settings import PlatformSettings


def storage_options(settings: PlatformSettings, uri: str) -> dict[str, str] | None:
    """delta-rs storage options for a table URI: S3 credentials/endpoint for s3:// and s3a://, none for local paths."""
    return delta_storage_options(settings) if uri.startswith(("s3://", "s3a://")) else None
