"""delta_compactor: merges the topics into Delta Lake tables (issue #6)."""
