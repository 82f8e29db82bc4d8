"""Liveness of the long-running roles without an HTTP port: the rollout controller and the
monitor write a heartbeat file on every loop, and a probe checks that it is fresh.

``python -m petalops.health rollout --max-age 60`` exits 0 when the heartbeat is fresh and
1, with one line naming the file and its age, when it is stale or missing: a Kubernetes
exec probe or a Docker HEALTHCHECK. A file rather than an HTTP endpoint because the
controller and the monitor open no port, and a hung loop (the failure the probe exists
for) stops writing it whatever else still runs in the process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

ROLES = ("rollout", "monitor")
HEARTBEAT_ENV = "PETALOPS_HEARTBEAT_FILE"


def heartbeat_path(home: Path, role: str) -> Path:
    """Where ``role`` writes its heartbeat (``$PETALOPS_HEARTBEAT_FILE`` if set)."""
    named = os.environ.get(HEARTBEAT_ENV)
    return Path(named) if named else home / "health" / f"{role}.heartbeat"


def beat(home: Path, role: str) -> None:
    """Record that ``role``'s loop went round once more. Never raises: a full or read-only
    disk must not stop the controller, only make its probe fail."""
    path = heartbeat_path(home, role)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        temp.write_text(f"{time.time():.3f}\n", encoding="utf-8")
        os.replace(temp, path)


def problem(home: Path, role: str, max_age: float, now: float | None = None) -> str | None:
    """Why ``role`` is not healthy, or None when its heartbeat is younger than ``max_age``."""
    path = heartbeat_path(home, role)
    try:
        last = float(path.read_text(encoding="utf-8").strip() or 0)
    except (OSError, ValueError):
        return f"no heartbeat at {path}: the {role} loop has not run (yet)"
    age = (time.time() if now is None else now) - last
    if age > max_age:
        return f"the {role} loop last beat {age:.0f} s ago (limit {max_age:g} s, {path})"
    return None


def main(argv: list[str] | None = None) -> int:
    """The probe: exit 0 when healthy, else 1 and one line on stderr."""
    parser = argparse.ArgumentParser(prog="python -m petalops.health")
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--home", type=Path, default=None, help="default: $PETALOPS_HOME")
    args = parser.parse_args(argv)
    home = args.home or Path(os.environ.get("PETALOPS_HOME", ".petalops"))
    reason = problem(home, args.role, args.max_age)
    if reason is not None:
        sys.stderr.write(f"unhealthy: {reason}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
