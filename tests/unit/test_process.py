"""ManagedProcess: start/stop of real child processes, pidfiles, clear errors."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from claimsctl.stack.process import ManagedProcess, StackError, port_in_use


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_is_idempotent_and_stop_kills_the_whole_group(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "logs")
    # The child spawns a grandchild: stop must take both down.
    cmd = [sys.executable, "-c", "import subprocess,time; subprocess.Popen(['sleep','300']); time.sleep(300)"]
    pid = proc.start(cmd, ready=lambda: True)
    assert proc.start(cmd, ready=lambda: True) == pid
    assert proc.pidfile.read_text() == str(pid)
    assert proc.stop() is True
    assert proc.pid() is None
    assert not proc.pidfile.exists()
    assert proc.stop() is False


def test_taken_port_is_reported_with_what_to_do(tmp_path: Path) -> None:
    port = _free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        assert port_in_use(port)
        proc = ManagedProcess("svc", tmp_path / "run", tmp_path / "logs", port=port)
        with pytest.raises(StackError, match=rf"port {port} .* already in use"):
            proc.start(["sleep", "5"], ready=lambda: True)
    assert proc.pid() is None


def test_missing_binary_says_to_install(tmp_path: Path) -> None:
    proc = ManagedProcess("ghost", tmp_path / "run", tmp_path / "logs")
    with pytest.raises(StackError, match="make install"):
        proc.start(["/nonexistent/binary"], ready=lambda: True)


def test_process_dying_during_start_shows_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess("crasher", tmp_path / "run", tmp_path / "logs")
    with pytest.raises(StackError, match="boom"):
        proc.start([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], ready=lambda: False)
    assert proc.pid() is None


def test_readiness_timeout_stops_the_process(tmp_path: Path) -> None:
    proc = ManagedProcess("slow", tmp_path / "run", tmp_path / "logs")
    with pytest.raises(StackError, match="not ready"):
        proc.start(["sleep", "60"], ready=lambda: False, timeout_s=1)
    assert proc.pid() is None
