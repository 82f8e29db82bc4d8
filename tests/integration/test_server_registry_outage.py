"""A registry outage and a worker crash at once, against a real `mlflow server`.

The respawned worker cannot resolve the champion while the registry is down; it loads the
last-known-good bundle its home recorded (checksum-verified), becomes ready, and reconciles
with the registry once it is back.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from tests.utils.load import Load, Poller
from tests.utils.mlflow_server import MlflowServer
from tests.utils.server_process import TOKEN, ServerProcess
from tests.utils.tcp_proxy import TcpProxy

from petalops.config import Settings
from petalops.pipeline.run import train

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _status_of(server: ServerProcess, pid: int, timeout: float) -> dict[str, object] | None:
    """The admin status of worker ``pid`` (new connections land on any worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = httpx.get(
                server.url + "/admin/status",
                headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
                timeout=5,
            ).json()
        except (httpx.HTTPError, ValueError):
            status = {}
        if status.get("pid") == pid:
            return status
        time.sleep(0.05)
    return None


def _new_worker(server: ServerProcess, old: list[int], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        fresh = [pid for pid in server.worker_pids() if pid not in old]
        if fresh:
            return fresh[0]
        time.sleep(0.1)
    raise AssertionError(f"no worker was respawned:\n{server.output()[-3000:]}")


def test_a_worker_respawned_during_a_registry_outage_serves_the_last_known_good(
    tmp_path: Path, shared_mlflow_server: MlflowServer
) -> None:
    # The workers reach the real registry through a forwarder the test cuts: to them it is
    # the registry going away (connections refused and reset), and back.
    mlflow_port = int(shared_mlflow_server.url.rsplit(":", 1)[1])
    registry = TcpProxy(("127.0.0.1", mlflow_port)).start()
    home = tmp_path / ".petalops"
    server: ServerProcess | None = None
    project = "outage"  # the session's server holds other tests' models too
    try:
        train(Settings(mlflow_uri=registry.url, home=home, project=project))
        server = ServerProcess(
            home,
            workers=2,
            reconcile_seconds=1.0,
            env={"PETALOPS_MLFLOW_URI": registry.url, "PETALOPS_PROJECT": project},
        )
        server.wait_until("/readyz")
        workers = server.worker_pids()
        assert len(workers) == 2, server.children()
        load = Load(server.url, threads=4, prefix="outage").start()
        ready = Poller(server.url).start()
        time.sleep(1.0)

        registry.stop()
        time.sleep(2.0)  # both workers have failed a reconciliation by now
        killed_at = time.time()
        os.kill(workers[0], signal.SIGKILL)
        respawned = _new_worker(server, workers, timeout=30)
        status = _status_of(server, respawned, timeout=30)
        time.sleep(3.0)  # traffic on the respawned worker, registry still down
        during_outage = dict(load.report.outcomes)
        print(f"\nregistry down, worker respawned: {during_outage}, readyz {dict(ready.statuses)}")
        assert status is not None, "the respawned worker never answered"
        assert status["ready"] is True, status
        assert status["serving"] == {"champion": "1", "policy": status["serving"]["policy"]}
        assert status["origin"] == "last_known_good", status

        registry.start()
        back = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            back = _status_of(server, respawned, timeout=10)
            if back is not None and back["origin"] == "registry" and back["last_error"] is None:
                break
            time.sleep(0.5)
        report = load.stop()
        statuses = ready.stop()
    finally:
        if server is not None:
            server.stop()
        registry.stop()
    print(f"whole run: {dict(report.outcomes)}; /readyz {dict(statuses)}")
    assert back is not None and back["origin"] == "registry" and back["last_error"] is None, back
    # Every HTTP answer was a 200. The only requests allowed to fail are the ones inside the
    # killed worker at the instant of the kill (their connection is reset): at most one per
    # client thread.
    http_failures = {k: n for k, n in report.outcomes.items() if k.isdigit() and k != "200"}
    assert http_failures == {}, report.outcomes
    assert report.failed <= 4, report.outcomes
    assert set(statuses) <= {"200", "RemoteProtocolError", "ReadError", "ConnectError"}
    # The poller ran through the outage (how often it got through depends on the box's load).
    assert statuses["200"] >= 3
    assert any(t > killed_at + 1.0 for t, _, _ in ready.samples), "no readiness poll after the kill"
    assert sum(n for k, n in statuses.items() if k != "200") <= 1, statuses
    late = [s for t, s, _ in ready.samples if s != "200" and t > killed_at + 1.0]
    assert late == [], late
