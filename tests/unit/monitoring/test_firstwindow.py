"""The first serving window as the drift reference: traffic that differed from training from
the first row on is not drift against it, a move after it is; a first window still too
short is no reference at all (verdicts ``None``, with the reason)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from petalops.config import Settings
from petalops.data.schema import ColumnSchema, Schema
from petalops.errors import InputError
from petalops.monitoring.drift import drift_report
from petalops.monitoring.firstwindow import (
    drift_reference,
    profile_schema,
    rows_matrix,
    unjudged,
    window_profile,
)
from petalops.monitoring.store import MonitorStore
from petalops.pipeline.profile import build_profile

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]


@pytest.fixture
def settings() -> Settings:
    return Settings(project="iris", monitor={"skew_rows": 150, "drift_min_rows": 50})  # type: ignore[arg-type]


@pytest.fixture
def training() -> dict[str, Any]:
    x, y = load_iris(return_X_y=True)
    return build_profile(x, y, NAMES, CLASSES, predicted=y)


def _log(
    store: MonitorStore,
    make_record: Callable[..., dict[str, Any]],
    rows: np.ndarray,
    labels: np.ndarray,
    start: float,
    version: str = "1",
) -> None:
    store.log_predictions(
        make_record(
            f"v{version}-{start}-{i}",
            model_version=version,
            ts=start + i,
            features=rows[i].tolist(),
            prediction=int(labels[i]),
        )
        for i in range(len(rows))
    )


def test_drift_since_the_first_window_not_since_training(
    store: MonitorStore,
    make_record: Callable[..., dict[str, Any]],
    settings: Settings,
    training: dict[str, Any],
) -> None:
    x, y = load_iris(return_X_y=True)
    production = x.copy()
    production[:, 2:] *= 1.7  # production's petals differ from training's from the start
    _log(store, make_record, production, y, 1000.0)  # the first 150 rows: the first window
    _log(store, make_record, production, y, 2000.0)  # the same traffic later
    window = store.window("iris", rows=150)
    against_training = drift_report(window, training, settings.monitor)
    assert against_training.dataset_drift is True

    reference = drift_reference(settings, store, "1", training, "first-window")
    assert reference.profile is not None
    assert reference.label == "iris/1 first window"
    assert reference.profile["rows"] == 150
    assert reference.profile["reference"]["from"] == 1000.0
    against_first = drift_report(window, reference.profile, settings.monitor)
    assert against_first.dataset_drift is False

    moved = production.copy()
    moved[:, :2] += 1.5  # and now the sepals move as well
    _log(store, make_record, moved, y, 3000.0)
    later = drift_report(store.window("iris", rows=150), reference.profile, settings.monitor)
    assert later.dataset_drift is True
    assert set(later.drifted) >= {"sepal_length", "sepal_width"}
    # The reference stays the first rows, whatever came later.
    again = drift_reference(settings, store, "1", training, "first-window")
    assert again.profile is not None
    assert again.profile["reference"]["to"] == 1149.0


def test_a_short_first_window_is_no_reference(
    store: MonitorStore,
    make_record: Callable[..., dict[str, Any]],
    settings: Settings,
    training: dict[str, Any],
) -> None:
    x, y = load_iris(return_X_y=True)
    _log(store, make_record, x[:20], y[:20], 1000.0, version="2")
    reference = drift_reference(settings, store, "2", training, "first-window")
    assert reference.profile is None
    assert "has served 20 rows" in reference.reason
    report = unjudged(drift_report(store.window("iris"), training, settings.monitor), "why")
    assert report.dataset_drift is None
    assert report.to_json()["dataset_drift"] is None
    assert report.reason == "why"
    assert drift_reference(settings, store, "2", training).profile is training  # the default
    with pytest.raises(InputError, match="--reference must be one of training, first-window"):
        drift_reference(settings, store, "2", training, "yesterday")


def test_mixed_rows_profile_in_the_training_layout() -> None:
    schema = Schema(
        (ColumnSchema(name="island", kind="categorical"), ColumnSchema(name="mass", kind="numeric"))
    )
    rows = [["Dream", 3500.0], [None, None], ["Biscoe", 4100.0]]
    matrix = rows_matrix(rows, schema)
    assert matrix.dtype == object
    assert np.isnan(matrix[1, 1])
    training = {
        "features": {
            "island": {"kind": "categorical", "categories": {"Dream": 0.5, "Biscoe": 0.5}},
            "mass": {"kind": "numeric", "min": 3000.0, "max": 5000.0},
        },
        "classes": ["a", "b"],
    }
    assert [c.kind for c in profile_schema(training).columns] == ["categorical", "numeric"]
    profile = window_profile(rows, np.asarray([0, 1, 1]), training)
    assert profile["features"]["island"]["categories"] == {"Dream": 1 / 3, "Biscoe": 1 / 3}
    assert profile["features"]["mass"]["missing"] == pytest.approx(1 / 3)
    assert profile["prediction_balance"] == {"a": 1 / 3, "b": 2 / 3}
    assert "class_balance" not in profile
