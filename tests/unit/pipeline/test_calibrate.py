"""The calibrate step: per-class maps from the model's probabilities to observed frequency."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from petalops.config import DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.errors import DataError
from petalops.monitoring.estimate import calibrated
from petalops.pipeline.calibrate import (
    ISOTONIC_MIN_ROWS,
    REPLICATES,
    calibrate,
    fit_calibration,
)
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


def test_the_iris_calibration_is_json_learnt_from_the_held_out_and_out_of_fold_rows() -> None:
    settings = Settings()
    rows = split(settings, DATA)
    model = fit(settings, rows, DATA.features)
    calibration = calibrate(model, rows, DATA, seed=settings.seed)
    assert json.loads(json.dumps(calibration)) == calibration
    # 30 held-out rows are too few alone: the 120 training rows join out of fold.
    assert calibration["rows"] == len(DATA.y) < ISOTONIC_MIN_ROWS
    assert calibration["out_of_fold_rows"] == len(rows.y_train)
    assert calibration["method"] == "temperature"
    assert calibration["classes"] == DATA.classes
    assert len(calibration["replicates"]) == REPLICATES
    # The default model is underconfident on Iris: the calibration sharpens it.
    assert calibration["maps"][0]["beta"] > 1


def test_temperature_scaling_finds_scikit_learns_temperature_on_hard_labels() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 3))
    y = (x[:, 0] + rng.normal(scale=1.5, size=400) > 0).astype(np.int64) + (x[:, 1] > 1)
    model = LogisticRegression(C=0.01).fit(x[:200], y[:200])
    proba = model.predict_proba(x[200:])
    ours = fit_calibration(proba, y[200:], ["a", "b", "c"], smooth=False, replicates=0)
    reference = CalibratedClassifierCV(FrozenEstimator(model), method="temperature")
    reference.fit(x[200:], y[200:])
    expected = reference.predict_proba(x[200:])
    assert calibrated(ours, proba) == pytest.approx(expected, abs=1e-3)


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


@pytest.mark.parametrize("method", ["temperature", "sigmoid"])
def test_a_perfectly_separated_small_split_cannot_claim_certainty(method: str) -> None:
    proba = np.asarray([[0.9, 0.1], [0.8, 0.2], [0.15, 0.85], [0.1, 0.9]])
    calibration = fit_calibration(proba, np.asarray([0, 0, 1, 1]), ["no", "yes"], method)  # type: ignore[arg-type]
    # Smoothed targets: four right answers do not make the model sure of everything.
    assert all(np.isfinite(v) and abs(v) < 100 for v in calibration["maps"][-1].values())
    assert 0.7 < calibrated(calibration, np.asarray([[0.1, 0.9]]))[0, 1] < 0.95


def test_mismatched_shapes_are_refused_with_the_fix() -> None:
    with pytest.raises(DataError, match="one row of class probabilities per label"):
        fit_calibration(np.ones((4, 2)), np.zeros(3, np.int64), ["no", "yes"])
