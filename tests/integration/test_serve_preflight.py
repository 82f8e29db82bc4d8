"""A real `petalops serve`: a second server on a busy port fails in one line and leaves the
first one's metrics alone; --wait-for-model SECONDS stops an unready server in time."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from tests.utils.server_process import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_second_server_on_the_same_port_leaves_the_first_alone(
    _session_stores: dict[str, Path], tmp_path: Path
) -> None:
    home = tmp_path / ".petalops"
    shutil.copytree(_session_stores["trained"], home, ignore=shutil.ignore_patterns("cache"))
    first = ServerProcess(home, workers=2)
    try:
        first.wait_until("/readyz")
        assert httpx.post(first.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
        second = ServerProcess(home, workers=2, extra_args=["--port", str(first.port)])
        assert second.process.wait(60) == 2
        assert second.output().startswith(f"error: port {first.port} on 127.0.0.1 is already")
        assert "serving" not in second.output()
        second.stop()
        metrics = httpx.get(first.url + "/metrics").text
        for name in ("petalops_requests_total", "petalops_model_ready", "petalops_model_info"):
            assert name in metrics, name
    finally:
        first.stop()


def test_wait_for_model_gives_up_after_its_seconds(tmp_path: Path) -> None:
    home = tmp_path / ".petalops"
    server = ServerProcess(home, extra_args=["--wait-for-model", "3"])
    try:
        assert server.process.wait(60) == 2
        assert "waiting for iris@champion (no model registry at" in server.output()
        last = server.output().strip().splitlines()[-1]
        assert last.startswith("error: iris@champion could not be served within")
        assert "no model registry at" in last
    finally:
        server.stop()
