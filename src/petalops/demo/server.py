"""`petalops serve --workers N` in a child process on 127.0.0.1, for the demos and tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from petalops.config import Settings
from petalops.errors import PetalopsError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`petalops serve --workers N` for these settings' stores, in a child process."""

    def __init__(
        self,
        settings: Settings,
        workers: int = 2,
        reconcile: float = 1.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.reconcile = reconcile
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = settings.home_dir / f"serve-{self.port}.log"

    def start(self, timeout: float = 90.0) -> ServerProcess:
        """Start the server and wait until ``/readyz`` answers 200 (at most ``timeout`` s)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
        env.update(
            PETALOPS_HOME=str(self.settings.home_dir),
            PETALOPS_MLFLOW_URI=self.settings.mlflow_uri,
            PETALOPS_MONITOR__DB_URL=self.settings.monitor.db_url,
            PETALOPS_RECONCILE_SECONDS=str(self.reconcile),
            PETALOPS_MONITOR__FLUSH_SECONDS="0.2",
        )
        env.update(self.extra_env)
        command = [sys.executable, "-m", "petalops", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        self.settings.home_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.settings.home_dir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PetalopsError(f"the server exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise PetalopsError(f"the server was not ready in {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s; a no-op when it is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
