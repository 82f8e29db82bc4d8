"""The alert conditions evaluated from the store (what `monitor watch` does without Prometheus)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest
from sklearn.datasets import load_iris
from tests.utils.quality import boundary_records, iris_model, iris_records

from petalops.config import Settings
from petalops.monitoring import alerts
from petalops.monitoring.alerts import evaluate, post_webhook
from petalops.monitoring.store import MonitorStore
from petalops.pipeline.profile import build_profile


@pytest.fixture
def settings() -> Settings:
    return Settings(monitor={"drift_min_rows": 50, "min_accuracy": 0.85})  # type: ignore[arg-type]


@pytest.fixture
def profile() -> dict[str, Any]:
    x, y = load_iris(return_X_y=True)
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    return build_profile(x, y, names, ["setosa", "versicolor", "virginica"], predicted=y)


class Recorder(BaseHTTPRequestHandler):
    bodies: ClassVar[list[Any]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[Recorder]]]:
    handler = type("Handler", (Recorder,), {"bodies": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_quiet_store_raises_nothing(settings: Settings, store: MonitorStore) -> None:
    result = evaluate(settings, store, None)
    assert result.alerts == []
    assert any("no reference profile" in note for note in result.notes)


def test_error_rate_and_p99_latency(
    settings: Settings, store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions(
        [make_record(f"e{i}", status=500 if i < 10 else 200, latency_ms=2.0) for i in range(100)]
    )
    fired = evaluate(settings, store, None)
    assert fired.names == {alerts.HIGH_ERROR_RATE}
    [alert] = fired.alerts
    assert alert.value == pytest.approx(0.10)

    store.log_predictions([make_record(f"s{i}", latency_ms=400.0) for i in range(10)])
    fired = evaluate(settings, store, None)
    assert alerts.HIGH_LATENCY in fired.names
    # Old rows leave the alert window.
    later = evaluate(settings, store, None, now=time.time() + 3600)
    assert later.alerts == []


def test_dataset_drift_from_the_profile(
    settings: Settings,
    store: MonitorStore,
    make_record: Callable[..., dict[str, Any]],
    profile: dict[str, Any],
) -> None:
    x, _ = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    rows = x[rng.integers(0, 150, 200)]
    store.log_predictions([make_record(f"n{i}", features=r.tolist()) for i, r in enumerate(rows)])
    assert alerts.DATASET_DRIFT not in evaluate(settings, store, profile).names
    store.log_predictions(
        [make_record(f"d{i}", features=(r * 1.5).tolist()) for i, r in enumerate(rows)]
    )
    settings.monitor.drift_window = 200
    fired = evaluate(settings, store, profile, reference="iris/1")
    assert alerts.DATASET_DRIFT in fired.names
    assert fired.drift is not None
    assert fired.drift.window["reference"] == "iris/1"


def test_accuracy_drop_needs_enough_labels(
    settings: Settings, store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions([make_record(f"a{i}", prediction=0, label=i % 2) for i in range(30)])
    few = evaluate(settings, store, None)
    assert alerts.ACCURACY_DROP not in few.names
    assert any("30 labelled rows" in note for note in few.notes)
    store.log_predictions([make_record(f"b{i}", prediction=0, label=i % 2) for i in range(30)])
    fired = evaluate(settings, store, None)
    [alert] = [a for a in fired.alerts if a.name == alerts.ACCURACY_DROP]
    assert alert.value == pytest.approx(0.5)
    assert alert.labels == {"model_version": "1", "variant": "champion"}


def test_log_drops_alert_only_on_new_drops(settings: Settings, store: MonitorStore) -> None:
    seen: dict[str, int] = {}
    store.record_health("host:1", written=100, dropped=0)
    assert evaluate(settings, store, None, dropped_before=seen).alerts == []
    store.record_health("host:1", written=200, dropped=7)
    fired = evaluate(settings, store, None, dropped_before=seen)
    assert [a.value for a in fired.alerts if a.name == alerts.LOG_DROPS] == [7.0]
    assert evaluate(settings, store, None, dropped_before=seen).alerts == []


def test_model_not_ready(
    settings: Settings, store: MonitorStore, http_server: tuple[str, type[Recorder]]
) -> None:
    url, handler = http_server
    assert evaluate(settings, store, None, server_url=url).alerts == []
    handler.status = 503
    assert evaluate(settings, store, None, server_url=url).names == {alerts.NO_MODEL_READY}
    closed = evaluate(settings, store, None, server_url="http://127.0.0.1:9")
    assert closed.names == {alerts.NO_MODEL_READY}


def test_webhook_posts_the_alerts(http_server: tuple[str, type[Recorder]]) -> None:
    url, handler = http_server
    alert = alerts.Alert(alerts.DATASET_DRIFT, "warning", "3 of 4 features drifted", 0.75, 0.5)
    assert post_webhook(url + "/hook", [alert]) is True
    [body] = handler.bodies
    assert body["source"] == "petalops"
    assert body["alerts"][0]["name"] == "PetalopsDatasetDrift"
    assert body["alerts"][0]["value"] == 0.75
    assert body["resolved"] == []
    handler.status = 500
    assert post_webhook(url + "/hook", [alert]) is False  # logged, never raised
    assert post_webhook("http://127.0.0.1:9/hook", [alert]) is False


def test_estimated_accuracy_and_data_quality_alert_without_labels(
    settings: Settings, store: MonitorStore
) -> None:
    profile = iris_model()[1]
    store.log_predictions(iris_records(200, labelled=False))
    calm = evaluate(settings, store, None, profiles=lambda _v: profile)
    assert not calm.names & {alerts.ESTIMATED_ACCURACY_DROP, alerts.DATA_QUALITY}
    # Traffic moved to where the model is unsure, inside the training range: no label came.
    store.log_predictions(boundary_records(500))
    unsure = evaluate(settings, store, None, profiles=lambda _v: profile)
    assert alerts.ESTIMATED_ACCURACY_DROP in unsure.names
    assert alerts.DATA_QUALITY not in unsure.names
    # And then out of the training range.
    store.log_predictions(iris_records(500, shift=3.0, labelled=False, start=time.time() + 600))
    assert alerts.DATA_QUALITY in evaluate(settings, store, None, profiles=lambda _v: profile).names
    [drop] = [a for a in unsure.alerts if a.name == alerts.ESTIMATED_ACCURACY_DROP]
    assert drop.labels == {"model_version": "1"}
    assert drop.value is not None and drop.value < 0.85
    assert "no labels needed" in drop.message


def test_a_version_without_a_readable_profile_is_a_note(
    settings: Settings, store: MonitorStore
) -> None:
    def missing(version: str) -> dict[str, Any]:
        raise LookupError(f"no version {version}")

    store.log_predictions(iris_records(60, labelled=False))
    result = evaluate(settings, store, None, profiles=missing)
    assert "version 1: no profile to check against (no version 1)" in result.notes
