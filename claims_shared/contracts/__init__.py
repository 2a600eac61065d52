"""Data contracts: every topic, schema and table name the platform publishes or reads is defined here."""
