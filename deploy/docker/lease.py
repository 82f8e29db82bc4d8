"""Run one command while holding a Kubernetes Lease, so only one rollout controller acts.

    python3 lease.py -- petalops rollout run

Inside a pod it talks to the API server with the pod's service account (standard library
only). Environment: PETALOPS_LEASE_NAME (required), POD_NAME (identity, default: hostname),
POD_NAMESPACE (default: the service account's namespace), PETALOPS_LEASE_SECONDS (15).

A replica waits until the lease is free or expired, takes it, starts the command and renews
the lease every third of its duration. If it cannot renew before the lease expires it stops
the command and exits non-zero, so two controllers never run at once; when the command ends
(or on SIGTERM) the lease is released so a standby takes over at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def now_micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro(value: str | None) -> float:
    if not value:
        return 0.0
    text = value.rstrip("Z").split(".")[0]
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()


class LeaseClient:
    """The few calls on coordination.k8s.io/v1 Leases that leader election needs."""

    def __init__(self, name: str, namespace: str, identity: str, duration: int) -> None:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:
            host = f"[{host}]"
        self.base = (
            f"https://{host}:{port}/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        )
        self.name = name
        self.namespace = namespace
        self.identity = identity
        self.duration = duration
        self.context = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        token = (SA_DIR / "token").read_text().strip()
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=5, context=self.context) as response:
            result: dict[str, Any] = json.loads(response.read())
            return result

    def get(self) -> dict[str, Any] | None:
        try:
            return self._call("GET", f"{self.base}/{self.name}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def _spec(self, acquired: str | None) -> dict[str, Any]:
        stamp = now_micro()
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.duration,
            "acquireTime": acquired or stamp,
            "renewTime": stamp,
        }

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours; False if someone holds it."""
        lease = self.get()
        try:
            if lease is None:
                self._call(
                    "POST",
                    self.base,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": self._spec(None),
                    },
                )
                return True
            spec = lease.get("spec", {})
            holder = spec.get("holderIdentity") or ""
            expires = parse_micro(spec.get("renewTime")) + spec.get("leaseDurationSeconds", 0)
            if holder not in ("", self.identity) and expires > time.time():
                return False
            ours = holder == self.identity
            lease["spec"] = self._spec(spec.get("acquireTime") if ours else None)
            # The PUT carries metadata.resourceVersion: a concurrent writer gets 409.
            self._call("PUT", f"{self.base}/{self.name}", lease)
            return True
        except urllib.error.HTTPError as exc:
            if exc.code == 409:
                return False
            raise

    def release(self) -> None:
        lease = self.get()
        if lease is None or lease.get("spec", {}).get("holderIdentity") != self.identity:
            return
        lease["spec"]["holderIdentity"] = ""
        lease["spec"]["leaseDurationSeconds"] = 1
        self._call("PUT", f"{self.base}/{self.name}", lease)


def main(argv: list[str]) -> int:
    command = argv[argv.index("--") + 1 :] if "--" in argv else argv
    if not command:
        print("usage: lease.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    name = os.environ.get("PETALOPS_LEASE_NAME", "")
    if not name:
        print("error: PETALOPS_LEASE_NAME is not set", file=sys.stderr)
        return 2
    namespace = os.environ.get("POD_NAMESPACE") or (SA_DIR / "namespace").read_text().strip()
    identity = os.environ.get("POD_NAME") or socket.gethostname()
    duration = int(os.environ.get("PETALOPS_LEASE_SECONDS", "15"))
    client = LeaseClient(name, namespace, identity, duration)

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    print(f"lease {namespace}/{name}: {identity} waiting", flush=True)
    heartbeat = os.environ.get("PETALOPS_HEARTBEAT_FILE", "")
    while not stopping:
        if heartbeat:  # a standby is alive too: its liveness probe reads this file
            with contextlib.suppress(OSError):
                Path(heartbeat).parent.mkdir(parents=True, exist_ok=True)
                Path(heartbeat).write_text(f"{time.time():.3f}\n", encoding="utf-8")
        try:
            if client.try_acquire():
                break
        except (OSError, urllib.error.URLError) as exc:
            print(f"lease: {exc}", file=sys.stderr, flush=True)
        time.sleep(max(1.0, duration / 3))
    if stopping:
        return 0
    print(f"lease {namespace}/{name}: {identity} is the leader", flush=True)

    child = subprocess.Popen(command)
    last_renewal = time.monotonic()
    code = 1
    try:
        while True:
            try:
                code = child.wait(timeout=max(1.0, duration / 3))
                break
            except subprocess.TimeoutExpired:
                pass
            if stopping:
                child.terminate()
                code = child.wait()
                break
            try:
                if client.try_acquire():
                    last_renewal = time.monotonic()
                else:
                    print("lease: taken by another replica; stopping", file=sys.stderr)
                    child.terminate()
                    child.wait()
                    return 1
            except (OSError, urllib.error.URLError) as exc:
                print(f"lease: renewal failed: {exc}", file=sys.stderr, flush=True)
            if time.monotonic() - last_renewal > duration * 0.8:
                print("lease: could not renew in time; stopping", file=sys.stderr)
                child.terminate()
                child.wait()
                return 1
    finally:
        with contextlib.suppress(OSError, urllib.error.URLError):
            client.release()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
