"""boto3 client factories for S3 and SQS; an endpoint of None means real AWS."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from claims_shared.settings import PlatformSettings


def _common(settings: PlatformSettings) -> dict[str, Any]:
    return {
        "region_name": settings.s3_region,
        "aws_access_key_id": settings.s3_access_key,
        "aws_secret_access_key": settings.s3_secret_key.get_secret_value(),
        "config": Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
    }


def s3_client(settings: PlatformSettings) -> Any:
    return boto3.client("s3", endpoint_url=settings.s3_endpoint or None, **_common(settings))


def sqs_client(settings: PlatformSettings) -> Any:
    return boto3.client("sqs", endpoint_url=settings.sqs_endpoint or None, **_common(settings))


def delta_storage_options(settings: PlatformSettings) -> dict[str, str]:
    """Storage options for delta-rs (deltalake) on this S3 endpoint."""
    options = {
        "AWS_REGION": settings.s3_region,
        "AWS_ACCESS_KEY_ID": settings.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
    }
    if settings.s3_endpoint:
        options["AWS_ENDPOINT_URL"] = settings.s3_endpoint
        options["AWS_ALLOW_HTTP"] = "true"
    return options
