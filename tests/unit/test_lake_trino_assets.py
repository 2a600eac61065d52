"""The Trino side: generated view files and scripts are current, cover every lake table, and run in order."""

from __future__ import annotations

import re

import pyarrow as pa

from claims_shared.settings import get_settings
from claimsctl.lake_sql.tables import append_schema, lake_tables
from claimsctl.lake_sql.views import (
    TRINO_DIR,
    VIEWS_DIR,
    load_views,
    render_create_views,
    render_live_views,
    render_register_tables,
)

HINT = "run `claimsctl lake generate` and commit the result"


def test_generated_live_views_are_current() -> None:
    for name, sql in render_live_views().items():
        assert (VIEWS_DIR / name).read_text() == sql, f"{name} is stale: {HINT}"


def test_register_tables_script_is_current_and_registers_every_lake_table() -> None:
    text = (TRINO_DIR / "register-tables.sql").read_text()
    assert text == render_register_tables(f"s3://{get_settings().lake_bucket}"), f"register-tables.sql is stale: {HINT}"
    registered = set(re.findall(r"schema_name => '(\w+)', table_name => '(\w+)'", text))
    assert registered == {(t.schema, t.name) for t in lake_tables()}
    assert "table_location => 's3://claims-lake/current/claims'" in text
    assert "table_location => 's3://claims-lake/append/telematics_trips'" in text


def test_create_views_script_is_current_and_creates_views_after_what_they_read() -> None:
    views = load_views()
    assert (TRINO_DIR / "create-views.sql").read_text() == render_create_views(views), f"create-views.sql: {HINT}"
    position = {v.name: i for i, v in enumerate(views)}
    for view in views:
        for dependency in view.reads:
            if dependency in position:
                assert position[dependency] < position[view.name], (view.name, dependency)
    assert {"gold.claim_360", "gold.claims_sla", "gold.fraud"} <= position.keys()


def test_live_views_of_current_tables_filter_tombstones() -> None:
    for view in load_views():
        if any(r.startswith("lake_current.") for r in view.reads):
            assert "WHERE NOT _deleted" in view.sql, view.name


def test_append_columns_follow_the_flattening_rules() -> None:
    documents = append_schema("document_record.v1")
    assert documents.field("source_key").type == pa.string()
    assert documents.field("exif_gps_lat").type == pa.float64()
    assert documents.field("fields_claim_number").type == pa.string()
    assert documents.field("fields_loss_date").type == pa.date32()
    assert documents.field("fields_amounts_json").type == pa.string()
    assert documents.field("notes_json").type == pa.string()
    trips = append_schema("telematics_trip.v1")
    assert trips.field("start_ts").type == pa.timestamp("us", tz="UTC")
    assert "events_json" in trips.names and "path_json" in trips.names
    assert trips.names[-4:] == ["_kafka_topic", "_kafka_partition", "_kafka_offset", "_event_date"]
