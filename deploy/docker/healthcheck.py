"""Docker HEALTHCHECK for every role of the petalops image (standard library only).

The role is read from PID 1's command line: the server is healthy when /readyz answers 200,
the MLflow server when /health does; the rollout controller and the monitor when the
heartbeat their loop writes each round is fresh (``python -m petalops.health``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path


def role_of(argv: list[str]) -> str:
    """Which role a command line (such as PID 1's) runs: "mlflow", "serve" or "worker"."""
    words = [Path(arg).name for arg in argv if arg]
    if "mlflow" in words and "server" in words:
        return "mlflow"
    if "serve" in words:
        return "serve"
    return "worker"


def url_for(kind: str, environ: dict[str, str]) -> str:
    host = environ.get("HOST", "0.0.0.0")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    port = environ.get("PORT", "5000")
    path = "/health" if kind == "mlflow" else "/readyz"
    return f"http://{host}:{port}{path}"


def main() -> int:
    try:
        argv = Path("/proc/1/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        argv = ["serve"]
    kind = role_of(argv)
    if kind == "worker":
        words = {Path(arg).name for arg in argv if arg}
        loop = "rollout" if "rollout" in words else "monitor" if "monitor" in words else None
        if loop is None:
            return 0
        age = "60" if loop == "rollout" else "180"
        return subprocess.call([sys.executable, "-m", "petalops.health", loop, "--max-age", age])
    url = url_for(kind, dict(os.environ))
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return 0 if response.status == 200 else 1
    except Exception as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
