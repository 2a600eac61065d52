"""delta_compactor: merges the normalized CDC topics into Delta Lake tables (issue #6).

Built so far: `planning` (pure: a batch of decoded changes -> per-table SCD1/SCD2 rows, next offsets, rejects),
`lake_schema` (table layouts and types from the Avro contracts), `writer` (Spark SQL MERGEs, idempotent on replay).
Not yet: the Kafka reading loop and its entry point (`__main__` still refuses to start). Engine facts: ENGINE-NOTES.md.
"""
