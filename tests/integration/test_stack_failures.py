"""`up` fails clearly and leaves nothing half-started."""

from __future__ import annotations

import shutil

import json
import socket

import pytest

from tests.conftest import claimsctl, isolated_settings, make_state_dir, shifted_test_ports

pytestmark = pytest.mark.integration


def test_taken_broker_port_fails_with_advice_and_starts_nothing() -> None:
    # Its own ports, so it can run next to the session's test stack: the test ports (which follow
    # CLAIMS_TEST_PORT_OFFSET, so other checkouts' stacks are safe too) moved by 75, clear of the fault suite's +50
    # and of the other offsets (multiples of 100).
    shifted = shifted_test_ports(75)
    broker_port = int(shifted["kafka_bootstrap"].rsplit(":", 1)[1])
    settings = isolated_settings(make_state_dir("claims-portclash-"), **shifted)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", broker_port))
        squatter.listen()
        result = claimsctl(settings, "up")
    assert result.returncode == 1
    message = result.stdout + result.stderr
    assert f"port {broker_port}" in message and "already in use" in message
    assert "stopped again" in message
    status = json.loads(claimsctl(settings, "status", "--json").stdout)
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    assert not [c["name"] for c in status["components"] if c["running"]], "a component was left running"
