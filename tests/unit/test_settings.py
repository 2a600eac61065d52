"""Settings come from CLAIMS_* variables; secrets never show up in reprs."""

from __future__ import annotations

import pytest

from claims_shared.settings import PlatformSettings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMS_PG_PORT", "6543")
    monkeypatch.setenv("CLAIMS_KAFKA_BOOTSTRAP", "kafka:9092")
    s = PlatformSettings()
    assert s.pg_port == 6543
    assert s.kafka_bootstrap == "kafka:9092"
    assert "port=6543" in s.pg_dsn


def test_secrets_are_not_printed() -> None:
    s = PlatformSettings(pg_password="hunter2", s3_secret_key="s3cr3t")
    assert "hunter2" not in repr(s)
    assert "s3cr3t" not in repr(s)


def test_connector_environment_matches_the_connector_definition() -> None:
    """Every ${env:NAME} in the Debezium connector definition is provided by the settings."""
    import json
    import re

    from claims_shared.settings import PROJECT_ROOT

    text = (PROJECT_ROOT / "infra" / "debezium" / "claims-postgres-connector.json").read_text()
    json.loads(text)
    needed = set(re.findall(r"\$\{env:([A-Z0-9_]+)\}", text))
    assert needed, "the connector definition should take its connection values from the environment"
    assert needed <= set(PlatformSettings().connector_env())


def test_as_env_round_trips_dict_settings_to_a_child_process(monkeypatch) -> None:  # noqa: ANN001
    # Children (services, the Lambda host) read these back: a dict must travel as JSON, not as Python's repr.
    from claims_shared.settings import PlatformSettings

    env = PlatformSettings(scoring_overrides={"idle_partition_close_s": 15.0}).as_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert PlatformSettings().scoring_overrides == {"idle_partition_close_s": 15.0}
