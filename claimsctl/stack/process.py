"""Supervision of the embedded stack's background processes: pidfiles, ports, readiness, clean stop.

Each component runs as its own process group so that `down` can stop it and every child it spawned,
and records its pid under `<state>/run/<name>.pid` so `status` and `down` work from any shell.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence


class StackError(RuntimeError):
    """A component could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    running: bool
    pid: int | None
    port: int | None
    detail: str = ""


@dataclass
class ManagedProcess:
    """One background process of the embedded stack, identified by name under a run directory."""

    name: str
    run_dir: Path
    log_dir: Path
    port: int | None = None
    extra_ports: Sequence[int] = field(default_factory=tuple)

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid from the pidfile if that process is still alive, else None (stale pidfiles are removed)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid):
            return pid
        self.pidfile.unlink(missing_ok=True)
        return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready: Callable[[], bool],
        timeout_s: float = 60.0,
        preexec_user: str | None = None,
    ) -> int:
        """Start `command` in its own process group unless already running; wait until `ready()` is true.

        Raises StackError (after stopping what it started) when a port is taken, the binary is missing,
        the process dies, or readiness does not come within `timeout_s`.
        """
        existing = self.pid()
        if existing is not None:
            return existing
        for port in [p for p in (self.port, *self.extra_ports) if p]:
            if port_in_use(port):
                raise StackError(
                    f"{self.name}: port {port} on 127.0.0.1 is already in use by another program. "
                    f"Stop that program, or choose another port in the settings (see README, 'Settings')."
                )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {})}
        argv = list(command)
        if preexec_user:
            argv = ["runuser", "-u", preexec_user, "--", *argv]
        log = open(self.logfile, "ab")
        try:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=full_env,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise StackError(
                f"{self.name}: cannot run {argv[0]!r} ({exc.strerror}). Run `make install` to install it."
            ) from exc
        finally:
            log.close()
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pidfile.unlink(missing_ok=True)
                raise StackError(
                    f"{self.name}: exited with code {proc.returncode} during start. "
                    f"Last log lines from {self.logfile}:\n{tail(self.logfile)}"
                )
            try:
                if ready():
                    return proc.pid
            except Exception:  # readiness probes fail while the component is still booting
                pass
            time.sleep(0.2)
        self.stop()
        raise StackError(
            f"{self.name}: not ready after {timeout_s:.0f}s; stopped it. "
            f"Last log lines from {self.logfile}:\n{tail(self.logfile)}"
        )

    def stop(self, timeout_s: float = 30.0) -> bool:
        """SIGTERM the process group, wait, then SIGKILL what is left. Returns True if something was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.1)
        if _group_alive(pid):
            # Say so in the component's log: a hard kill skips its shutdown (flushes, commits), which explains
            # repeats or lost in-memory state after the next start.
            with open(self.logfile, "a") as log:
                log.write(f"[claimsctl] {self.name} did not stop within {timeout_s:.0f}s of SIGTERM: SIGKILL\n")
            _signal_group(pid, signal.SIGKILL)
            end = time.monotonic() + 5
            while time.monotonic() < end and _group_alive(pid):
                time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)
        return True

    def status(self, detail: str = "") -> ComponentStatus:
        return ComponentStatus(self.name, self.is_running(), self.pid(), self.port, detail)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def rss_kib(pid: int) -> int:
    """Resident set size of a process and all its descendants, in KiB (0 when gone)."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def _proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, fields of /proc/<pid>/stat after the command name) for every process: state, ppid, pgid, ..."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            yield int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, fields in _proc_stats():
        children.setdefault(int(fields[1]), []).append(child)
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg succeeds while zombies remain; check for a live member.
    return any(int(fields[3]) == pgid and fields[0] != "Z" for _, fields in _proc_stats())


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
