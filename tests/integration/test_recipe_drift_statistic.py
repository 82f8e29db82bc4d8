"""The recipe "add a drift statistic" is one function plus its threshold: a statistic
defined in this module alone (the Wasserstein distance from scipy) shows up in the drift
report, its JSON, the HTML report, the `monitor drift` table and the drift gauge."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from prometheus_client import REGISTRY
from scipy import stats
from sklearn.datasets import load_iris
from typer.testing import CliRunner

from petalops.cli.app import app
from petalops.config import Settings
from petalops.monitoring.metrics import set_drift_gauges
from petalops.monitoring.statistics import DriftStatistic, Measurement, register, unregister
from petalops.monitoring.status import current_drift
from petalops.monitoring.store import MonitorStore

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def wasserstein(spec: Mapping[str, Any], current: npt.NDArray[np.float64]) -> Measurement:
    """The first Wasserstein distance of the live column from the training sample."""
    return Measurement(float(stats.wasserstein_distance(spec["sample"], current)))


WASSERSTEIN = DriftStatistic(
    name="wasserstein",
    measure=wasserstein,
    threshold=0.5,
    label="W1",
    title="Wasserstein distance",
    description="W1 against the training sample",
)


@pytest.fixture
def registered() -> Iterator[DriftStatistic]:
    register(WASSERSTEIN)
    try:
        yield WASSERSTEIN
    finally:
        unregister(WASSERSTEIN.name)


@pytest.fixture
def settings(trained_settings: Settings) -> Settings:
    """The champion's store holding 200 live rows whose petal measurements grew by 60 %."""
    x, y = load_iris(return_X_y=True)
    rows = x[np.random.default_rng(0).integers(0, 150, 200)].copy()
    rows[:, 2:] *= 1.6
    now = time.time()
    store = MonitorStore.from_settings(trained_settings)
    store.log_predictions(
        {
            "request_id": f"w{i}",
            "ts": now - 200 + i,
            "model_name": "iris",
            "model_version": "1",
            "features": rows[i].tolist(),
            "prediction": int(y[i % 150]),
        }
        for i in range(200)
    )
    store.close()
    return trained_settings


def test_a_statistic_of_this_module_reaches_every_output(
    settings: Settings, registered: DriftStatistic
) -> None:
    store = MonitorStore.from_settings(settings)
    result = current_drift(settings, store, rows=200)
    store.close()
    report = result.report
    expected = {
        name: stats.wasserstein_distance(
            result.profile["features"][name]["sample"], result.window.features[:, j]
        )
        for j, name in enumerate(NAMES)
    }
    for name in NAMES:
        measured = report.features[name].statistics["wasserstein"]
        assert measured.value == pytest.approx(expected[name])
        assert measured.threshold == 0.5
        assert measured.reached == (expected[name] >= 0.5)
    assert report.features["petal_length"].statistics["wasserstein"].reached
    assert not report.features["sepal_width"].statistics["wasserstein"].reached

    # The gauge, under the statistic's name.
    set_drift_gauges(report)
    gauge = REGISTRY.get_sample_value(
        "petalops_drift_score", {"feature": "petal_length", "test": "wasserstein"}
    )
    assert gauge == pytest.approx(expected["petal_length"])

    home = settings.home_dir.parent
    assert Path.cwd() == home
    runner = CliRunner()

    # --json
    out = runner.invoke(app, ["monitor", "drift", "--window", "200", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    petal = data["features"]["petal_length"]["statistics"]["wasserstein"]
    assert petal["value"] == pytest.approx(expected["petal_length"])
    assert (petal["threshold"], petal["reached"]) == (0.5, True)
    assert data["thresholds"]["statistics"]["wasserstein"] == 0.5

    # the table
    out = runner.invoke(app, ["monitor", "drift", "--window", "200"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "W1 against the training sample)" in " ".join(out.stdout.split())  # the title
    header = next(line for line in out.stdout.splitlines() if line.startswith("┃ feature"))
    assert [cell.strip() for cell in header.strip("┃ ").split("┃")] == [
        "feature",
        "drift",
        "KS",
        "p-value",
        "PSI",
        "W1",
        "ref mean",
        "live mean",
    ]
    petal_row = next(line for line in out.stdout.splitlines() if "petal_length" in line)
    assert f"{expected['petal_length']:.4f}" in petal_row

    # --html
    out = runner.invoke(app, ["monitor", "drift", "--window", "200", "--html", "drift.html"])
    assert out.exit_code == 0, out.output
    text = (home / "drift.html").read_text(encoding="utf-8")
    assert "<th>Wasserstein distance</th>" in text
    assert "or Wasserstein distance ≥ 0.5;" in text
    assert f"<td>{expected['petal_length']:.4f}</td>" in text


def test_without_the_registration_nothing_of_it_remains(settings: Settings) -> None:
    out = CliRunner().invoke(app, ["monitor", "drift", "--window", "200", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert set(data["features"]["petal_length"]["statistics"]) == {"ks", "psi"}
