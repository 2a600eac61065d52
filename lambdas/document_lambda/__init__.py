"""The object-stream Lambda: S3/SQS/EventBridge events in, document records and sidecars out (handler.py)."""
