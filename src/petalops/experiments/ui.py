"""`petalops ui`: the MLflow UI on the embedded store, bound to 127.0.0.1 by default."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from petalops.config import Settings
from petalops.errors import InputError, RegistryUnavailableError
from petalops.registry.store import ensure_experiment


def ui_command(settings: Settings, host: str, port: int) -> list[str]:
    """The `mlflow server` command line for the settings' store."""
    settings.artifact_root.mkdir(parents=True, exist_ok=True)
    return [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        settings.artifact_root.as_uri(),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As servers do: connections lingering in TIME_WAIT do not make a port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def start_ui(
    settings: Settings, host: str = "127.0.0.1", port: int = 5000
) -> subprocess.Popen[bytes]:
    """Start the MLflow server on the embedded store in its own process group."""
    if not settings.tracking_uri.startswith("sqlite:///"):
        raise InputError(
            f"the tracking store is {settings.tracking_uri}, which serves its own UI; open it "
            "in a browser (petalops ui only starts one for the embedded store)"
        )
    if not 1 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port; example: --port 5000")
    if not port_is_free(host, port):
        raise InputError(f"port {port} on {host} is in use; pick another with --port")
    # An empty store still needs its schema before the server can list anything.
    ensure_experiment(settings)
    env = {**os.environ, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    return subprocess.Popen(ui_command(settings, host, port), env=env, start_new_session=True)


def wait_until_serving(proc: subprocess.Popen[bytes], url: str, timeout: float = 60.0) -> None:
    """Block until ``url`` answers /health, or raise if the server died or timed out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RegistryUnavailableError(f"mlflow server exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise RegistryUnavailableError(f"mlflow server did not answer at {url} within {timeout:.0f}s")


def stop_ui(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop the server and its workers (the whole process group it leads)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
