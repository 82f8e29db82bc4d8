"""A real `mlflow server` on 127.0.0.1 for tests, that can be stopped and started again on the
same port and store (a registry outage and its end)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.utils.processes import free_port, wait_http


class MlflowServer:
    """`mlflow server` with a SQLite backend and proxied artifacts under ``root``."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 180.0) -> MlflowServer:
        """Start it (again) and wait until ``/health`` answers."""
        log = (self.root / "server.log").open("ab")
        # No job runner (five huey consumers besides the server): petalops uses no MLflow
        # jobs, and they double the start time on a small box.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.root / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            env=env,
            start_new_session=True,
        )
        log.close()
        wait_http(f"{self.url}/health", timeout=timeout, process=self.process)
        return self

    def stop(self) -> None:
        """Stop it (the registry becomes unreachable: connections are refused)."""
        if self.process is None:
            return
        # Its own session: the whole group (the server and its workers) goes.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        self.process = None
