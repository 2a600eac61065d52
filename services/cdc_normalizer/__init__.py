"""cdc_normalizer: Debezium envelopes -> typed, versioned, PII-tokenized records (issue #3)."""
