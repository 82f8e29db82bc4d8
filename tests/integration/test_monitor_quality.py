"""`petalops monitor quality` and the estimated figures of `monitor status`, on a real
registry (versions trained by the pipeline, so their profiles hold the calibration) and
store, with the probabilities the served runtime gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from typer.testing import CliRunner, Result

from petalops.cli.app import app
from petalops.config import Settings
from petalops.errors import InputError
from petalops.monitoring.store import MonitorStore
from petalops.registry import load_profile, load_runtime


def invoke(args: list[str]) -> Result:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def home(trained_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Version 1 served 300 Iris rows (one in three labelled), then 100 rows past the
    training range; version 2 served 30 rows (too few to judge)."""
    x, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    now = time.time()
    records = []
    for version, count, shift in (("1", 300, 0.0), ("1", 100, 4.0), ("2", 30, 0.0)):
        runtime = load_runtime(trained_settings, f"iris/{version}")
        pick = rng.integers(0, 150, count)
        rows = x[pick] + shift
        proba = runtime.predict_proba(rows)
        for i in range(count):
            records.append(
                {
                    "request_id": f"q{len(records)}",
                    "ts": now - 1000 + len(records),
                    "model_name": "iris",
                    "model_version": version,
                    "variant": "champion",
                    "status": 200,
                    "features": rows[i].tolist(),
                    "prediction": int(proba[i].argmax()),
                    "probabilities": proba[i].tolist(),
                    "label": int(y[pick[i]]) if shift == 0 and i % 3 == 0 else None,
                }
            )
    store = MonitorStore.from_settings(trained_settings)
    store.log_predictions(records)
    store.close()
    monkeypatch.chdir(trained_settings.home_dir.parent)
    return trained_settings.home_dir.parent


def test_trained_versions_store_their_calibration(trained_settings: Settings) -> None:
    calibration = load_profile(trained_settings, "iris/1")["calibration"]
    assert calibration["method"] == "temperature"
    assert calibration["rows"] == 150


def test_quality_json_estimates_each_version_next_to_its_realized_figures(home: Path) -> None:
    out = invoke(["monitor", "quality", "--window", "300", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    one, two = data["versions"]
    assert one["model_version"] == "1"
    assert one["window"]["rows"] == 300
    # The newest 300 rows are 100..399: labelled every third of the in-range 100..299.
    assert one["estimated"]["labelled"] == sum(1 for i in range(100, 300) if i % 3 == 0)
    assert one["estimated"]["accuracy"]["value"] is not None
    assert one["data_quality"]["passed"] is False  # the last 100 rows are out of range
    assert two["estimated"]["accuracy"] == {"value": None, "low": None, "high": None}
    assert "30 rows, need at least 50" in two["estimated"]["reason"]
    assert two["data_quality"]["passed"] is None


def test_quality_on_in_range_traffic_estimates_within_reach_of_the_labels(home: Path) -> None:
    since = invoke(["monitor", "quality", "--version", "1", "--window", "400", "--json"])
    data = json.loads(since.stdout)["versions"][0]
    # 400 newest rows: 300 in range (100 labelled) and 100 out of range, unlabelled.
    assert data["estimated"]["labelled"] == 100
    table = invoke(["monitor", "quality", "--version", "1", "--chunks", "4"])
    assert table.exit_code == 0, table.output
    assert "estimated performance" in table.stdout
    assert "out_of_range" in table.stdout
    assert table.stdout.count(" rows  estimated ") == 4


def test_quality_html_and_a_bad_window(home: Path) -> None:
    out = invoke(["monitor", "quality", "--html", "quality.html"])
    assert out.exit_code == 0, out.output
    text = (home / "quality.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in text
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    bad = subprocess.run(
        [sys.executable, "-m", "petalops", "monitor", "quality", "--window", "0"],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: --window must be a positive number of rows, got 0"


def test_status_shows_the_estimated_accuracy_per_version(home: Path) -> None:
    out = invoke(["monitor", "status", "--json"])
    assert out.exit_code == 0, out.output
    estimated = json.loads(out.stdout)["estimated"]
    assert [v["model_version"] for v in estimated["versions"]] == ["1", "2"]
    assert estimated["versions"][0]["accuracy"]["value"] is not None
    assert estimated["errors"] == []
    table = invoke(["monitor", "status"])
    assert "estimated quality" in table.stdout


def test_skew_compares_the_first_served_rows_with_the_training_profile(home: Path) -> None:
    out = invoke(["monitor", "skew", "--version", "1", "--rows", "300", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["rows"] == 300
    assert data["skewed"] is False  # its first 300 rows were Iris rows
    shifted = invoke(["monitor", "skew", "--version", "1", "--rows", "400"])
    assert "SKEW" in shifted.stdout  # with the 100 rows past the range
    assert "not judged" in invoke(["monitor", "skew", "--version", "2"]).stdout


def test_drift_against_the_first_serving_window(home: Path) -> None:
    first = ["--reference", "first-window", "--set", "monitor.skew_rows=300"]
    out = invoke(["monitor", "drift", "--version", "1", "--window", "100", *first, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["window"]["reference"] == "iris/1 first window"
    assert data["window"]["reference_kind"] == "first-window"
    assert data["window"]["reference_rows"] == 300
    assert data["dataset_drift"] is True  # the newest 100 rows moved past the first 300
    table = invoke(["monitor", "drift", "--version", "2", "--reference", "first-window"])
    assert "reference: iris/2 first window (30 served rows)" in table.stdout
    assert "no reference yet: version 2 has served 30 rows" in table.stdout
    with pytest.raises(InputError, match="--reference must be one of training, first-window"):
        invoke(["monitor", "drift", "--reference", "yesterday"])


def test_serve_counts_failing_values_and_refusals_reach_monitor_quality(
    trained_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `petalops serve` (spool, loader, multiprocess metrics): per-feature counters on
    /metrics, and the 400s in the prediction log, so `monitor quality` counts them."""
    import sqlite3

    import httpx
    from tests.utils.server_process import ServerProcess

    home = trained_settings.home_dir
    server = ServerProcess(home, workers=1)
    bad = {"sepal_length": "wide", "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    try:
        server.wait_until("/readyz")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(60):
                assert client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).is_success
            assert client.post("/predict", json={"features": [5.1, 3.5, 99.0, 0.2]}).is_success
            for _ in range(3):
                refused = client.post("/v1/predict", json={"instances": [bad]})
                assert refused.status_code == 400
            metrics = client.get("/metrics").text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with sqlite3.connect(home / "monitor.db") as con:
                if con.execute("SELECT count(*) FROM predictions").fetchone()[0] >= 64:
                    break
            time.sleep(0.1)
    finally:
        assert server.stop() in (0, -15), server.output()
    assert (
        'petalops_input_values_total{check="refused",feature="sepal_length",model_version="1"} '
        "3.0" in metrics
    )
    assert (
        'petalops_input_values_total{check="out_of_range",feature="petal_length",'
        'model_version="1"} 1.0' in metrics
    )
    monkeypatch.chdir(home.parent)
    out = invoke(["monitor", "quality", "--version", "1", "--json"])
    assert out.exit_code == 0, out.output
    data_quality = json.loads(out.stdout)["versions"][0]["data_quality"]
    assert data_quality["rows"] == 61
    assert data_quality["refused"] == 3
    assert data_quality["passed"] is False  # 3 of 64 answers refused: over the 1 % limit
