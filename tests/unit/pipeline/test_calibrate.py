"""The calibrate step: per-class maps from the model's probabilities to observed frequency."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from petalops.config import DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.errors import DataError
from petalops.monitoring.estimate import calibrated
from petalops.pipeline.calibrate import ISOTONIC_MIN_ROWS, calibrate, fit_calibration
from petalops.pipeline.fit import fit
from petalops.pipeline.split import split

DATA = load_dataset(DataSettings())


def _overconfident(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes; the model says p but is right with probability 0.5 + (p - 0.5) / 2."""
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(0.0, 1.0, n)
    truth_p1 = 0.5 + (p1 - 0.5) / 2
    y = (rng.random(n) < truth_p1).astype(np.int64)
    return np.column_stack([1 - p1, p1]), y


def test_the_iris_calibration_is_json_with_a_map_per_class_and_the_method_for_its_size() -> None:
    settings = Settings()
    rows = split(settings, DATA)
    model = fit(settings, rows, DATA.features)
    calibration = calibrate(model, rows, DATA)
    assert json.loads(json.dumps(calibration)) == calibration
    assert calibration["rows"] == len(rows.y_test) < ISOTONIC_MIN_ROWS
    assert calibration["method"] == "sigmoid"
    assert calibration["classes"] == DATA.classes
    assert all(set(m) == {"a", "b"} for m in calibration["maps"])


def test_sigmoid_calibration_pulls_overconfident_probabilities_toward_the_truth() -> None:
    proba, y = _overconfident(3000)
    calibration = fit_calibration(proba, y, ["no", "yes"], method="sigmoid")
    assert calibration["maps"][0] == {}  # two classes: only the positive one is mapped
    fixed = calibrated(calibration, np.asarray([[0.05, 0.95]]))
    assert fixed[0, 1] == pytest.approx(0.5 + 0.45 / 2, abs=0.05)
    assert fixed.sum() == pytest.approx(1.0)


def test_isotonic_is_chosen_on_many_rows_and_matches_scikit_learns_predictions() -> None:
    proba, y = _overconfident(ISOTONIC_MIN_ROWS + 500, seed=1)
    calibration = fit_calibration(proba, y, ["no", "yes"])
    assert calibration["method"] == "isotonic"
    grid = np.linspace(0, 1, 101)
    expected = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(proba[:, 1], y)
    got = calibrated(calibration, np.column_stack([1 - grid, grid]))[:, 1]
    assert got == pytest.approx(expected.predict(grid), abs=1e-9)


def test_a_perfectly_separated_small_split_still_gets_a_finite_map() -> None:
    proba = np.asarray([[0.99, 0.01], [0.98, 0.02], [0.03, 0.97], [0.01, 0.99]])
    calibration = fit_calibration(proba, np.asarray([0, 0, 1, 1]), ["no", "yes"])
    slope = calibration["maps"][1]["a"]
    assert np.isfinite(slope) and slope > 0
    # Platt's smoothed targets: four rows cannot prove a probability of 0.999.
    assert calibrated(calibration, np.asarray([[0.001, 0.999]]))[0, 1] < 0.95


def test_mismatched_shapes_are_refused_with_the_fix() -> None:
    with pytest.raises(DataError, match="one row of class probabilities per label"):
        fit_calibration(np.ones((4, 2)), np.zeros(3, np.int64), ["no", "yes"])
