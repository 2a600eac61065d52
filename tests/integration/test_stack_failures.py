"""`up` fails clearly and leaves nothing half-started."""

from __future__ import annotations

import shutil

import json
import socket

import pytest

from tests.conftest import claimsctl, make_state_dir, isolated_settings

pytestmark = pytest.mark.integration


def test_taken_broker_port_fails_with_advice_and_starts_nothing() -> None:
    # Its own ports, so it can run next to the session's test stack.
    settings = isolated_settings(
        make_state_dir("claims-portclash-"),
        pg_port=25532, kafka_bootstrap="127.0.0.1:29192", s3_endpoint="http://127.0.0.1:21433",
        sqs_endpoint="http://127.0.0.1:25100", objectstore_master_port=21434, objectstore_volume_port=21435,
        objectstore_filer_port=21436,
    )
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 29192))
        squatter.listen()
        result = claimsctl(settings, "up")
    assert result.returncode == 1
    message = result.stdout + result.stderr
    assert "port 29192" in message and "already in use" in message
    assert "stopped again" in message
    status = json.loads(claimsctl(settings, "status", "--json").stdout)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    assert not [c["name"] for c in status["components"] if c["running"]], "a component was left running"
