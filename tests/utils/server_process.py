"""Start `petalops serve` as a real process on 127.0.0.1 (a free port) for integration tests."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.utils.processes import free_port

TOKEN = "integration-token"


class ServerProcess:
    """One server: started in its own session, stopped by SIGTERM (SIGKILL if it hangs)."""

    def __init__(
        self,
        home: Path,
        workers: int = 1,
        reconcile_seconds: float = 60.0,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        ca: Path | None = None,
    ) -> None:
        self.home = home
        self.port = port or free_port()
        # ca: the server speaks HTTPS (--tls-cert in extra_args) with this certificate.
        self.verify: Path | bool = ca if ca is not None else True
        self.url = f"{'https' if ca is not None else 'http'}://127.0.0.1:{self.port}"
        self.log_path = home.parent / f"server-{self.port}.log"
        env = {
            **os.environ,
            "PETALOPS_HOME": str(home),
            "PETALOPS_ADMIN_TOKEN": TOKEN,
            "PETALOPS_RECONCILE_SECONDS": str(reconcile_seconds),
            **(env or {}),
        }
        command = [
            sys.executable,
            "-m",
            "petalops",
            "serve",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
            *(extra_args or []),
        ]
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=home.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_until(self, path: str, status: int = 200, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited ({self.process.returncode}):\n{self.output()}")
            try:
                answer = httpx.get(self.url + path, timeout=2, verify=self._context())
                if answer.status_code == status:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{path} never answered {status}:\n{self.output()}")

    def _context(self) -> ssl.SSLContext | bool:
        if isinstance(self.verify, Path):
            return ssl.create_default_context(cafile=str(self.verify))
        return self.verify

    def client(self, **options: Any) -> httpx.Client:
        """A client of this server (trusting its certificate when it speaks HTTPS)."""
        return httpx.Client(base_url=self.url, verify=self._context(), **options)

    def stop(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
        return self.process.returncode

    def children(self) -> dict[int, str]:
        """The server's child processes now: ``{pid: command line}``."""
        return children_of(self.process.pid)

    def worker_pids(self) -> list[int]:
        """The uvicorn workers among the children: spawned by multiprocessing, or forked
        from the server (serve.worker_start=fork), so with its command line."""
        return sorted(
            pid
            for pid, cmd in self.children().items()
            if "--multiprocessing-fork" in cmd or "petalops serve" in cmd
        )

    def loader_pid(self) -> int | None:
        """The prediction spool loader among the children."""
        found = [pid for pid, cmd in self.children().items() if "monitoring.spool" in cmd]
        return found[0] if found else None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def admin(self, path: str) -> httpx.Response:
        return httpx.post(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def children_of(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` (zombies left out): ``{pid: command line}``."""
    out: dict[int, str] = {}
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in (int(p) for p in listed):
        if is_running(child):
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            out[child] = cmd
    return out


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    state = next((line for line in status.splitlines() if line.startswith("State:")), "")
    return "zombie" not in state and "(dead)" not in state
