"""HistGradientBoosting in ONNX: native categorical splits and missing values, exactly as
scikit-learn predicts them."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from petalops.pipeline.compile import to_onnx_bytes
from petalops.pipeline.hist_onnx import _bitset_members, tree_ensemble_attributes


def _data(n_classes: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """Two categorical columns (codes 0..5, NaN a category of its own) around two numeric
    ones with missing values; the label depends on category sets and thresholds."""
    n = 1500
    cat = rng.integers(0, 6, size=(n, 2)).astype(np.float64)
    num = rng.normal(size=(n, 2))
    cat[rng.random(n) < 0.1, 0] = np.nan
    num[rng.random(n) < 0.1, 1] = np.nan
    x = np.c_[num[:, 0], cat[:, 0], num[:, 1], cat[:, 1]]
    score = np.isin(cat[:, 0], [1, 3, 4]) + (num[:, 0] > 0.3) + np.isnan(num[:, 1]) * 1.5
    score = score + np.isin(cat[:, 1], [0, 5]) * 0.7 + rng.normal(scale=0.4, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return x, y


def _run(clf: HistGradientBoostingClassifier, x: Any) -> tuple[Any, Any]:
    data, dtype = to_onnx_bytes(Pipeline([("clf", clf)]), x.shape[1])
    assert dtype == "float64"
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {"input": x})
    return label, proba


@pytest.mark.parametrize("n_classes", [2, 4])
def test_categorical_splits_and_missing_values_predict_as_scikit_learn(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    x, y = _data(n_classes, rng)
    clf = HistGradientBoostingClassifier(
        categorical_features=[1, 3], max_iter=40, max_leaf_nodes=15, random_state=0
    ).fit(x, y)
    nodes = np.concatenate([p.nodes for it in clf._predictors for p in it])
    split = nodes[(nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 1)]
    # both ways a categorical split can send missing values are compiled
    assert set(split["missing_go_to_left"].tolist()) == {0, 1}
    # training rows, and rows scikit-learn sends the missing way: NaN, a negative code, a
    # category never seen in training, a fractional code
    odd = x[:200].copy()
    odd[0::5, 1], odd[1::5, 1], odd[2::5, 3], odd[3::5, 3] = np.nan, -1.0, 9.0, 2.5
    odd[4::5, 0] = np.nan
    rows = np.vstack([x, odd])
    label, proba = _run(clf, rows)
    assert label.tolist() == clf.predict(rows).tolist()
    assert np.abs(proba - clf.predict_proba(rows)).max() < 1e-12


@pytest.mark.parametrize("n_classes", [2, 3])
def test_calibrated_it_gives_the_decision_function_to_the_calibration(n_classes: int) -> None:
    # model.calibrated=sigmoid: skl2onnx's CalibratedClassifierCV converter asks the model
    # for raw scores (option raw_scores), as scikit-learn calibrates its decision_function
    rng = np.random.default_rng(10 + n_classes)
    x, y = _data(n_classes, rng)
    hist = HistGradientBoostingClassifier(categorical_features=[1, 3], max_iter=15)
    clf = CalibratedClassifierCV(hist, method="sigmoid", cv=3).fit(x, y)
    data, _ = to_onnx_bytes(Pipeline([("clf", clf)]), x.shape[1])
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {"input": x})
    assert label.tolist() == clf.predict(x).tolist()
    assert np.abs(proba - clf.predict_proba(x)).max() < 1e-9


def test_a_numeric_model_compiles_in_float64_exactly() -> None:
    # scikit-learn compares float64 values with float64 thresholds: a value between a
    # threshold and its float32 neighbour goes the same way in the graph.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 3))
    y = (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(int)
    clf = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(x, y)
    thresholds = np.concatenate([p.nodes["num_threshold"] for it in clf._predictors for p in it])
    near = np.nextafter(thresholds[thresholds != 0][:50], np.inf)
    rows = np.vstack([x, np.c_[near, near, near]])
    label, proba = _run(clf, rows)
    assert label.tolist() == clf.predict(rows).tolist()
    assert np.abs(proba - clf.predict_proba(rows)).max() < 1e-12


def test_the_baseline_comes_first_one_leaf_per_class() -> None:
    rng = np.random.default_rng(1)
    x, y = _data(3, rng)
    clf = HistGradientBoostingClassifier(
        categorical_features=[1, 3], max_iter=3, random_state=0
    ).fit(x, y)
    attrs = tree_ensemble_attributes(clf)
    assert attrs["n_targets"] == 3
    assert len(attrs["tree_roots"]) == 3 + 3 * 3
    weights = np.frombuffer(attrs["leaf_weights"].raw_data, dtype=np.float64)
    assert weights[:3].tolist() == clf._baseline_prediction.reshape(-1).tolist()
    assert attrs["leaf_targetids"][:3] == [0, 1, 2]


def test_bitset_members() -> None:
    words = np.zeros(8, dtype=np.uint32)
    words[0] = (1 << 0) | (1 << 3)
    words[1] = 1 << 2  # 34
    words[7] = 1 << 31  # 255
    assert _bitset_members(words) == {0, 3, 34, 255}
