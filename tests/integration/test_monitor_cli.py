"""`petalops monitor drift | status | watch` as a user runs them, on a real registry and store."""

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
from petalops.errors import NotFoundError
from petalops.monitoring.store import MonitorStore


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A real `petalops` process: exit code and one-line error as a user sees them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    return subprocess.run(
        [sys.executable, "-m", "petalops", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def invoke(args: list[str], cwd: Path) -> Result:
    """The same command in-process (the test runs in ``cwd``): no interpreter start-up."""
    assert Path.cwd() == cwd
    result = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture
def home(trained_settings: Settings) -> Path:
    """A project directory whose monitoring store holds 200 normal then 200 shifted rows."""
    x, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    pick = rng.integers(0, 150, 400)
    rows = x[pick].copy()
    rows[200:, 2] *= 1.6  # petal_length
    rows[200:, 3] *= 1.6  # petal_width
    now = time.time()
    store = MonitorStore.from_settings(trained_settings)
    store.log_predictions(
        {
            "request_id": f"r{i}",
            "ts": now - 400 + i,
            "model_name": "iris",
            "model_version": "1",
            "variant": "champion",
            "status": 200,
            "latency_ms": 1.2,
            "features": rows[i].tolist(),
            "prediction": int(y[j]) if i < 200 else 2,
            "label": int(y[j]),
        }
        for i, j in enumerate(pick)
    )
    store.close()
    return trained_settings.home_dir.parent


def test_drift_json_has_the_documented_shape(home: Path) -> None:
    out = invoke(["monitor", "drift", "--window", "200", "--json"], home)
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["dataset_drift"] is True
    assert set(data["features"]) == {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    petal = data["features"]["petal_length"]
    assert petal["drift"] is True
    assert petal["test"] == "ks"
    assert petal["p_value"] < 0.01
    assert data["features"]["sepal_width"]["drift"] is False
    assert data["prediction_drift"]["test"] == "chi2"
    assert data["window"]["rows"] == 200
    assert data["window"]["reference"] == "iris/1"


def test_version_filter_and_a_too_small_window(home: Path) -> None:
    whole = invoke(["monitor", "drift", "--version", "1", "--window", "1000", "--json"], home)
    assert whole.exit_code == 0, whole.output
    assert json.loads(whole.stdout)["window"]["versions"] == {"1": 400}
    small = invoke(["monitor", "drift", "--since", "1h", "--window", "10", "--json"], home)
    assert small.exit_code == 0, small.output
    data = json.loads(small.stdout)
    assert data["window"]["sufficient"] is False
    assert data["dataset_drift"] is None
    assert "too small" in data["reason"]
    table = invoke(["monitor", "drift", "--window", "10"], home)
    assert "window too small" in table.stdout


def test_drift_html_report_is_self_contained(home: Path) -> None:
    out = invoke(["monitor", "drift", "--html", "report.html"], home)
    assert out.exit_code == 0, out.output
    text = (home / "report.html").read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 4
    assert "petal_length" in text
    assert "DRIFT" in text
    assert "<script" not in text
    assert 'src="http' not in text


def test_status_and_watch(home: Path) -> None:
    status = invoke(["monitor", "status", "--json"], home)
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    [row] = data["quality"]
    assert row["model_version"] == "1"
    assert row["labelled"] == 400
    assert 0.4 < row["accuracy"] < 0.9
    watch = invoke(["monitor", "watch", "--once", "--no-retrain", "--json"], home)
    assert watch.exit_code == 0, watch.output
    tick = json.loads(watch.stdout)
    names = {a["name"] for a in tick["alerts"]}
    assert {"PetalopsDatasetDrift", "PetalopsAccuracyDrop"} <= names
    assert tick["cycle"] is None


def test_bad_arguments_are_one_line_errors(home: Path) -> None:
    out = run(["monitor", "drift", "--since", "soon"], home)
    assert out.returncode == 2
    assert (
        out.stderr.strip() == "error: --since 'soon' is not a duration; examples: 90s, 15m, 1h, 2d"
    )
    with pytest.raises(NotFoundError, match="42"):
        invoke(["monitor", "drift", "--version", "42"], home)
