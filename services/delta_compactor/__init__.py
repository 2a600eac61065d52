"""delta_compactor: merges the normalized CDC topics and the other streams into Delta Lake tables (issue #6).

`job` (the Kafka loop: assign, batch, decode, dead-letter, write, record offsets; `python -m services.delta_compactor`),
`planning` (pure: a batch of decoded changes -> per-table SCD1/SCD2 rows, next offsets, rejects), `append_tables`
(pure: the other streams' flat append-table rows), `lake_schema` (table layouts and types from the Avro contracts),
`writer` (Spark SQL MERGEs, idempotent on replay), `lake_lock` (the lock `claimsctl maintain` and the job share).
Engine facts: ENGINE-NOTES.md.
"""
