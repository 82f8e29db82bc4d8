"""`petalops serve` as a real process: every protocol, multi-worker metrics, readiness,
graceful SIGTERM. The registry is the real one (trained by the shared fixtures)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.utils.server_process import ServerProcess

from petalops.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def two_workers(
    _session_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One 2-worker server shared by the read-only tests of this module."""
    home = tmp_path_factory.mktemp("served") / ".petalops"
    shutil.copytree(_session_stores["trained"], home, ignore=shutil.ignore_patterns("cache"))
    server = ServerProcess(home, workers=2)
    try:
        server.wait_until("/readyz")
        yield server
    finally:
        server.stop()


def test_every_protocol_answers_on_a_real_server(two_workers: ServerProcess) -> None:
    url = two_workers.url
    with httpx.Client(base_url=url, timeout=10) as client:
        tutorial = client.post("/predict", json={"features": ROW})
        assert tutorial.status_code == 200
        assert tutorial.json()["prediction"] == 0
        assert tutorial.json()["model_version"] == "1"
        assert client.get("/health").json() == {"status": "ok"}
        record = dict(
            zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], ROW, strict=True)
        )
        assert client.post("/v1/predict", json=record).json()["class_name"] == "setosa"
        csv = "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n"
        invocations = client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
        assert invocations.json() == {"predictions": [0]}
        assert client.get("/ping").status_code == 200
        kserve = client.post("/v1/models/iris:predict", json={"instances": [ROW]})
        assert kserve.json() == {"predictions": [0]}
        tensor = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
        infer = client.post("/v2/models/iris/versions/2/infer", json=tensor).json()
        assert infer["model_version"] == "2"
        assert infer["outputs"][1]["datatype"] == "FP32"
        bad = client.post("/predict", json={"features": ROW[:3]})
        assert bad.status_code == 400
        assert bad.json()["example"] == {"features": ROW}
        assert client.get("/openapi.json").json()["info"]["title"] == "petalops model server"


def _predict_total(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["petalops_model_ready"].samples[0].value == 1.0
    return sum(
        s.value
        for s in families["petalops_requests"].samples
        if s.name == "petalops_requests_total" and s.labels["route"] == "/predict"
    )


def test_metrics_are_right_whichever_worker_answers(two_workers: ServerProcess) -> None:
    url = two_workers.url
    time.sleep(0.3)
    before = _predict_total(url)
    for _ in range(30):
        # A new connection each time spreads the requests over both workers.
        assert httpx.post(url + "/predict", json={"features": ROW}).status_code == 200
    time.sleep(0.5)  # each worker flushes its counts every 0.1 s
    totals = {_predict_total(url) - before for _ in range(4)}
    assert totals == {30.0}
    pids = {e["pid"] for e in two_workers.events() if e["event"] == "worker_started"}
    assert len(pids) == 2


def test_sigterm_drains_and_flushes(trained_settings: Settings) -> None:
    server = ServerProcess(trained_settings.home_dir, workers=2)
    server.wait_until("/readyz")
    done: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                try:
                    done.append(client.post("/predict", json={"features": ROW}).status_code)
                except httpx.HTTPError:
                    return  # the server closed the connection while stopping: fine

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(1.0)
    started = time.monotonic()
    code = server.stop()
    stop.set()
    thread.join(10)
    assert time.monotonic() - started < 15
    assert code in (0, -15), server.output()
    assert done and set(done) == {200}
    events = server.events()
    assert sum(1 for e in events if e["event"] == "worker_stopped") == 2
    logged = sum(1 for e in events if e["event"] == "request" and e["route"] == "/predict")
    assert logged == len(done)  # every answered request's log line was flushed


def test_not_ready_without_a_model(empty_settings: Settings) -> None:
    server = ServerProcess(empty_settings.home_dir, extra_args=["--wait-for-model", "0"])
    try:
        server.wait_until("/healthz")
        assert httpx.get(server.url + "/readyz").status_code == 503
        response = httpx.post(server.url + "/predict", json={"features": ROW})
        assert response.status_code == 503
        assert "petalops train" in response.json()["error"]
        assert httpx.get(server.url + "/v2/health/ready").status_code == 503
    finally:
        server.stop()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_metrics_pass_promtool(two_workers: ServerProcess) -> None:
    httpx.post(two_workers.url + "/predict", json={"features": ROW})
    httpx.post(two_workers.url + "/predict", json={"features": ROW[:2]})
    time.sleep(0.3)
    text = httpx.get(two_workers.url + "/metrics").text
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
