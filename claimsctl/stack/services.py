"""The platform's own stream services as embedded-stack components: same code and settings as in production."""

from __future__ import annotations

import json
import sys
import urllib.request

from claims_shared.settings import PROJECT_ROOT, PlatformSettings
from claimsctl.stack.process import ManagedProcess


class EmbeddedService:
    """`python -m services.<module>` with the stack's settings; ready when its /health answers 200."""

    def __init__(self, settings: PlatformSettings, name: str, module: str, web_port: int) -> None:
        self.settings = settings
        self.module = module
        self.web_port = web_port
        self.proc = ManagedProcess(name, settings.state_dir / "run", settings.state_dir / "logs", port=web_port)

    def start(self) -> None:
        self.proc.start(
            [sys.executable, "-m", self.module],
            env=self.settings.as_env(),
            cwd=PROJECT_ROOT,
            ready=self.healthy,
            timeout_s=90,
        )

    def stop(self) -> bool:
        # Faust stops gracefully on SIGTERM: the current batch is flushed and committed first (the batch loop may
        # need its full flush timeout on a busy machine, hence the generous wait).
        return self.proc.stop(timeout_s=60)

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=2) as response:
            return response.status == 200

    def health(self) -> tuple[bool, str]:
        """(healthy, last error) from /health (503 with a reason while a batch loop keeps failing)."""
        import urllib.error

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/health", timeout=2) as response:
                body = json.loads(response.read() or b"{}")
                return bool(body.get("healthy", True)), str(body.get("last_error", ""))
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read() or b"{}")
            except ValueError:
                body = {}
            return False, str(body.get("last_error") or f"/health answered {exc.code}")
        except OSError as exc:
            return False, f"/health unreachable: {exc}"

    def metrics(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/metrics", timeout=2) as response:
            return json.loads(response.read())
