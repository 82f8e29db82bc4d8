"""The bit-for-bit comparisons behind `petalops reproduce`."""

from __future__ import annotations

import json
import math

from petalops.config import Settings
from petalops.experiments.reproduce import compare_fitted, compare_metrics, recorded_settings


def test_identical_fitted_parameters_have_no_diffs() -> None:
    fitted = {"clf.coef_": [[0.1, 0.2], [0.3, 0.4]], "clf.n_iter_": [12]}
    assert compare_fitted(fitted, json.loads(json.dumps(fitted))) == {}


def test_one_ulp_is_a_difference_and_its_size_is_reported() -> None:
    old = {"clf.coef_": [[0.1, 0.2]], "clf.intercept_": [1.0]}
    new = {"clf.coef_": [[0.1, math.nextafter(0.2, 1.0)]], "clf.intercept_": [1.0]}
    diffs = compare_fitted(old, new)
    assert list(diffs) == ["clf.coef_"]
    size = diffs["clf.coef_"]
    assert size is not None
    assert 0 < size < 1e-15


def test_missing_key_or_changed_shape_has_no_size() -> None:
    diffs = compare_fitted({"a": [1.0, 2.0], "b": [1.0]}, {"a": [1.0]})
    assert diffs == {"a": None, "b": None}


def test_metric_diffs_treat_nan_as_equal_and_missing_as_different() -> None:
    nan = float("nan")
    assert (
        compare_metrics({"accuracy": 0.9, "log_loss": nan}, {"accuracy": 0.9, "log_loss": nan})
        == {}
    )
    assert compare_metrics({"accuracy": 0.9}, {"accuracy": 0.9000000001, "f1": 1.0}) == {
        "accuracy": (0.9, 0.9000000001),
        "f1": (None, 1.0),
    }


def test_recorded_sections_replace_the_current_ones_but_stores_stay(tmp_path: object) -> None:
    current = Settings(home=".elsewhere", seed=1)  # type: ignore[arg-type]
    recorded = {
        "project": "iris",
        "seed": 42,
        "data": current.data.model_dump(mode="json"),
        "model": {"class": "sklearn.linear_model.LogisticRegression", "params": {"C": 0.3}},
        "split": {"test_size": 0.25, "stratify": True},
        "gate": current.gate.model_dump(mode="json"),
    }
    settings = recorded_settings(current, recorded)
    assert (settings.seed, settings.model.params, settings.split.test_size) == (
        42,
        {"C": 0.3},
        0.25,
    )
    assert settings.home_dir == current.home_dir
