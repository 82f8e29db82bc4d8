"""Training–serving skew: a version's first served rows against its training profile."""

from __future__ import annotations

from typing import Any

import pytest
from tests.utils.quality import iris_model, iris_records

from petalops.config import Settings
from petalops.errors import InputError
from petalops.monitoring.drift import drift_report
from petalops.monitoring.skew import training_serving_skew
from petalops.monitoring.store import MonitorStore


def profiles(_version: str) -> dict[str, Any]:
    return iris_model()[1]


def test_a_version_served_like_its_training_data_has_no_skew(store: MonitorStore) -> None:
    store.log_predictions(iris_records(300))
    report = training_serving_skew(Settings(), store, "1", profiles=profiles)
    assert report.rows == 300
    assert report.skewed is False
    assert report.to_json()["drift"]["window"]["reference"] == "iris/1 (training)"


def test_skew_judges_the_first_rows_whatever_came_after(store: MonitorStore) -> None:
    # A serving path that doubled petal_width from the start, fixed later.
    first = iris_records(300, seed=1, start=1000.0)
    for record in first:
        record["features"][3] *= 2.5
    store.log_predictions(first + iris_records(2000, seed=2, start=5000.0))
    report = training_serving_skew(Settings(), store, "1", rows=300, profiles=profiles)
    assert report.skewed is True
    assert "petal_width" in report.drift.drifted
    # Drift over time looks at the newest rows, which are fine again.
    newest = drift_report(store.window("iris", rows=300), profiles("1"), Settings().monitor)
    assert newest.dataset_drift is False


def test_too_few_rows_yet_is_not_judged(store: MonitorStore) -> None:
    store.log_predictions(iris_records(20))
    report = training_serving_skew(Settings(), store, "1", profiles=profiles)
    assert report.skewed is None
    assert report.to_json()["skewed"] is None
    assert "too small" in report.drift.reason


def test_a_bad_row_count_is_refused(store: MonitorStore) -> None:
    with pytest.raises(InputError, match="--rows must be a positive"):
        training_serving_skew(Settings(), store, "1", rows=0, profiles=profiles)
