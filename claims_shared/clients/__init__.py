"""Client factories configured from PlatformSettings (Kafka, S3, SQS, PostgreSQL)."""
