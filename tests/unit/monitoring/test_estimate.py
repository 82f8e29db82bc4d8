"""Estimated performance from calibrated probabilities, validated where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.utils.shifted import IrisLike, shifted_window, windows

from petalops.errors import DataError
from petalops.monitoring.estimate import Band, calibrated, estimate, realized_metrics
from petalops.pipeline.calibrate import fit_calibration

CLASSES = ["a", "b", "c"]


def test_confident_right_rows_estimate_high_and_uncertain_rows_lower() -> None:
    sure = np.tile([0.98, 0.01, 0.01], (200, 1))
    unsure = np.tile([0.5, 0.3, 0.2], (200, 1))
    predicted = np.zeros(200, dtype=np.int64)
    high = estimate(sure, predicted, None, CLASSES)
    low = estimate(unsure, predicted, None, CLASSES)
    assert high.accuracy.value == pytest.approx(0.98)
    assert low.accuracy.value == pytest.approx(0.5)
    assert low.accuracy.low is not None and low.accuracy.high is not None
    assert low.accuracy.low < 0.5 < low.accuracy.high
    assert high.recall["a"].value == pytest.approx(0.98 * 200 / (0.98 * 200))
    assert high.calibration == "none"


def test_a_window_too_small_has_null_figures_and_says_why() -> None:
    result = estimate(
        np.tile([0.9, 0.05, 0.05], (3, 1)), np.zeros(3, np.int64), None, CLASSES, min_rows=10
    )
    assert not result.sufficient
    assert result.to_json()["accuracy"] == {"value": None, "low": None, "high": None}
    assert "3 rows, need at least 10" in result.reason


def test_realized_figures_come_from_the_labelled_rows_only() -> None:
    proba = np.tile([0.8, 0.1, 0.1], (4, 1))
    predicted = np.asarray([0, 0, 1, 2])
    labels = np.asarray([0, 1, -1, 2])
    result = estimate(proba, predicted, None, CLASSES, labels=labels)
    assert result.labelled == 3
    assert result.realized["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    estimated_on_labelled = result.realized.pop("estimated_accuracy")
    # Their confidence in what they predicted: 0.8, 0.8 and (row 3 predicted class 2) 0.1.
    assert estimated_on_labelled == pytest.approx((0.8 + 0.8 + 0.1) / 3, abs=1e-4)
    assert result.realized == realized_metrics(predicted[[0, 1, 3]], labels[[0, 1, 3]], CLASSES)


def test_probabilities_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(DataError, match="one row of class probabilities per prediction"):
        estimate(np.ones((5, 2)), np.zeros(5, np.int64), None, CLASSES)


def test_the_calibration_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(3)
    # Claims 0.95 on every row but is right on 70 % of them.
    proba = np.tile([0.95, 0.03, 0.02], (600, 1))
    truth = np.where(rng.random(600) < 0.7, 0, rng.integers(1, 3, 600))
    calibration = fit_calibration(proba, truth, CLASSES)
    fixed = calibrated(calibration, proba)
    assert fixed.sum(axis=1) == pytest.approx(np.ones(600))
    result = estimate(proba, np.zeros(600, np.int64), calibration, CLASSES)
    raw = estimate(proba, np.zeros(600, np.int64), None, CLASSES)
    assert result.accuracy.value == pytest.approx(0.7, abs=0.03)
    assert raw.accuracy.value == pytest.approx(0.95)


def sharpen(proba: np.ndarray, power: float = 3.0) -> np.ndarray:
    """An overconfident model's probabilities: raised to ``power`` and renormalised."""
    raised = proba**power
    return np.asarray(raised / raised.sum(axis=1, keepdims=True))


@pytest.mark.slow
def test_on_shifted_windows_the_realized_accuracy_falls_within_the_band() -> None:
    """Iris-shaped classes with overlap; an overconfident model trained and calibrated on
    unshifted rows; 24 covariate-shifted windows (the class given the features unchanged)
    whose truth is known. bench/estimate_shift.py prints the same windows one by one."""
    rng = np.random.default_rng(7)
    world = IrisLike.from_iris()
    x_train, y_train = world.sample(1500, rng)
    x_held, y_held = world.sample(600, rng)
    x_pool, y_pool = world.sample(20_000, rng)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(x_train, y_train)
    calibration = fit_calibration(
        sharpen(model.predict_proba(x_held)), y_held, world.classes, seed=7
    )
    proba_pool = sharpen(model.predict_proba(x_pool))
    predicted_pool = np.asarray(proba_pool.argmax(axis=1), dtype=np.int64)

    inside = {"accuracy": 0, "macro_f1": 0, "raw": 0}
    realized_accuracy, errors = [], []
    shifts = windows(len(world.features), rng)
    for direction, strength in shifts:
        rows = shifted_window(x_pool, 400, direction, strength, rng)
        result = estimate(
            proba_pool[rows],
            predicted_pool[rows],
            calibration,
            world.classes,
            labels=y_pool[rows],
        )
        raw = estimate(proba_pool[rows], predicted_pool[rows], None, world.classes)
        for metric in ("accuracy", "macro_f1"):
            band: Band = getattr(result, metric)
            inside[metric] += band.contains(result.realized[metric])
        inside["raw"] += raw.accuracy.contains(result.realized["accuracy"])
        realized_accuracy.append(result.realized["accuracy"])
        assert result.accuracy.value is not None
        errors.append(abs(result.accuracy.value - result.realized["accuracy"]))
    # The shifts move the realized accuracy a lot, so a constant estimate would miss.
    assert max(realized_accuracy) - min(realized_accuracy) > 0.1
    # Most windows inside the band (16 to 24 of 24 across seeds 1-7 of the bench) ...
    assert inside["accuracy"] > len(shifts) / 2
    assert inside["macro_f1"] > len(shifts) / 2
    assert float(np.mean(errors)) < 0.035
    # ... which the overconfident model's own probabilities never manage.
    assert inside["raw"] < len(shifts) / 4
