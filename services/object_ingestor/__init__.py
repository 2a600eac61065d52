"""object_ingestor: links documents to claims, spots duplicate photos, expands extracts (issue #5)."""
