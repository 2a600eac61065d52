"""The embedded PostgreSQL cluster: initdb (not as root), logical WAL, roles, schema, slot clean-up."""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from claims_shared.settings import PROJECT_ROOT, PlatformSettings
from claimsctl.stack.process import ManagedProcess, StackError

INFRA = PROJECT_ROOT / "infra" / "postgres"
SUPERUSER = "postgres"
# Applied in order once each; the applied version is kept outside the CDC'd `public` schema.
MIGRATIONS = [INFRA / "schema.sql"]


def bin_dir() -> Path:
    """Directory with initdb/postgres/pg_ctl: $CLAIMS_PG_BIN_DIR, else the newest /usr/lib/postgresql/*/bin."""
    configured = os.environ.get("CLAIMS_PG_BIN_DIR")
    candidates = [configured] if configured else sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise StackError(
        "PostgreSQL server binaries not found (looked for /usr/lib/postgresql/*/bin/initdb). "
        "Run `make install` (installs the Debian package postgresql) or set CLAIMS_PG_BIN_DIR."
    )


def _run_as_owner() -> str | None:
    """initdb and postgres refuse to run as root: run them as the `postgres` system user then."""
    return SUPERUSER if os.geteuid() == 0 else None


class EmbeddedPostgres:
    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.data_dir = settings.state_dir / "postgres" / "data"
        self.socket_dir = settings.state_dir / "postgres" / "socket"
        self.proc = ManagedProcess(
            "postgres", settings.state_dir / "run", settings.state_dir / "logs", port=settings.pg_port
        )

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self.proc.is_running():
            return
        self._init_cluster()
        command = [
            str(bin_dir() / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.settings.pg_port),
            "-k", str(self.socket_dir),
            "-c", f"config_file={self.data_dir / 'postgresql.conf'}",
        ]
        self.proc.start(command, ready=self._accepting, timeout_s=60, preexec_user=_run_as_owner())
        self._bootstrap()

    def stop(self) -> bool:
        if self.proc.is_running():
            # Only slots nobody reads: a restart of PostgreSQL under a running Connect must keep the connector's
            # slot, or Debezium finds its offset "no longer available on the server", its task dies and the
            # changes of the restart window are never captured (found by tests/faults). `down` releases the
            # connector's slot first, after checking it holds nothing unshipped (EmbeddedConnect.release_slot).
            self.drop_replication_slots(inactive_only=True)
        # SIGTERM to postgres is a "smart" shutdown that waits for clients; SIGINT is "fast", which is what
        # we want, but the generic stop sends SIGTERM then SIGKILL. pg_ctl does it properly.
        pid = self.proc.pid()
        if pid is None:
            return False
        subprocess.run(
            _as_owner([str(bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30"]),
            capture_output=True,
        )
        return self.proc.stop(timeout_s=10) or True

    # -- setup ---------------------------------------------------------------------------------------
    def _init_cluster(self) -> None:
        owner = _run_as_owner()
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if owner:
            shutil.chown(self.data_dir.parent, owner, owner)
            shutil.chown(self.socket_dir, owner, owner)
            self._make_traversable(self.data_dir.parent)
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = subprocess.run(
            _as_owner([
                str(bin_dir() / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER,
                "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
            ]),
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"initdb failed in {self.data_dir}:\n{result.stderr.strip()}")
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(f"\n# claims platform\ninclude '{INFRA / 'postgresql.conf'}'\n")
            fh.write("unix_socket_permissions = 0777\n")

    def _make_traversable(self, path: Path) -> None:
        """The postgres user must be able to reach the state dir and read infra/postgres/postgresql.conf."""
        for parent in [path, *path.parents]:
            try:
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o011)
            except PermissionError:
                pass
        for parent in [INFRA, *INFRA.parents]:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o011)

    def superuser_conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.socket_dir} port={self.settings.pg_port} dbname={dbname} user={SUPERUSER}"

    def _accepting(self) -> bool:
        with psycopg.connect(self.superuser_conninfo(), connect_timeout=2):
            return True

    def _bootstrap(self) -> None:
        """Roles, database, publication (idempotent), then pending schema migrations."""
        s = self.settings
        result = subprocess.run(
            [
                str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "-v", f"app_password={s.pg_password.get_secret_value()}",
                "-v", f"cdc_password={s.pg_cdc_password.get_secret_value()}",
                "-d", self.superuser_conninfo(), "-f", str(INFRA / "bootstrap.sql"),
            ],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise StackError(f"PostgreSQL bootstrap failed:\n{result.stderr.strip()}")
        apply_migrations(self.superuser_conninfo(s.pg_db), owner=s.pg_user)

    # -- CDC hygiene -----------------------------------------------------------------------------------
    def replication_slots(self) -> list[tuple[str, bool]]:
        with psycopg.connect(self.superuser_conninfo(), connect_timeout=3) as conn:
            return [(r[0], r[1]) for r in conn.execute("SELECT slot_name, active FROM pg_replication_slots")]

    def drop_replication_slots(self, *, inactive_only: bool = False) -> list[str]:
        """Drop the slots of this cluster (with `inactive_only`, those no client is streaming from): an inactive
        slot keeps WAL forever. Dropping a slot a connector still needs makes Debezium refuse to resume (its offset
        is "no longer available"), so only `down`'s path, which checked the slot first, drops the connector's."""
        dropped = []
        query = "SELECT slot_name FROM pg_replication_slots" + (" WHERE NOT active" if inactive_only else "")
        try:
            with psycopg.connect(self.superuser_conninfo(), connect_timeout=3, autocommit=True) as conn:
                for (slot,) in conn.execute(query).fetchall():
                    conn.execute(
                        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                        "WHERE slot_name = %s AND active_pid IS NOT NULL", (slot,)
                    )
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    dropped.append(slot)
        except psycopg.OperationalError:
            pass
        return dropped


def apply_migrations(conninfo: str, owner: str) -> list[str]:
    """Apply migrations not yet recorded in platform_meta.schema_version, each in its own transaction."""
    applied_now = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS platform_meta")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS platform_meta.schema_version "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT name FROM platform_meta.schema_version")}
        for path in MIGRATIONS:
            if path.name in done:
                continue
            with conn.transaction():
                # Objects are owned by the application role, like in production.
                conn.execute(f"SET LOCAL ROLE {owner}")
                conn.execute(path.read_text())
                conn.execute("RESET ROLE")
                conn.execute("INSERT INTO platform_meta.schema_version (name) VALUES (%s)", (path.name,))
            applied_now.append(path.name)
    return applied_now


def _as_owner(argv: list[str]) -> list[str]:
    owner = _run_as_owner()
    return ["runuser", "-u", owner, "--", *argv] if owner else argv


def current_user() -> str:
    return getpass.getuser()
