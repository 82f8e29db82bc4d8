"""The calibrate step: how far to trust the model's own probabilities, learnt on the held-out
rows and stored with the version (``profile["calibration"]``, plain JSON, never a pickle).

Label-free performance estimation (:mod:`petalops.monitoring.estimate`) reads a window's
expected accuracy off the probabilities, so they must mean what they say: of the rows given
0.8, about 80 % right. Each class gets a one-vs-rest map from the model's probability to the
observed frequency, fitted by scikit-learn on the held-out split:

* ``sigmoid`` (Platt scaling, with Platt's smoothed targets) on the log-odds of the
  probability: two numbers a class, stable on a few dozen rows, the default below
  ``ISOTONIC_MIN_ROWS``;
* ``isotonic`` regression: any monotone shape, which needs many rows not to overfit
  (scikit-learn's own guidance), chosen from ``ISOTONIC_MIN_ROWS`` held-out rows on.

The calibrated probabilities of a row are renormalised to sum to 1, as scikit-learn's
``CalibratedClassifierCV`` does; with two classes only the positive class is mapped.

A calibration learnt on a few hundred rows is itself uncertain (a lucky held-out split makes
the model look better than it is), so ``REPLICATES`` more maps are fitted on bootstrap
resamples of the held-out rows; the estimate's band draws from them as well.

JSON layout::

    {"method": "sigmoid", "rows": 30, "classes": ["setosa", ...], "eps": 1e-06,
     "maps": [{"a": 1.7, "b": -0.3}, ...],            # sigmoid: 1 / (1 + exp(-(a z + b)))
     "replicates": [[{"a": ..., "b": ...}, ...], ...]}   # the same, per bootstrap resample
    {"method": "isotonic", ..., "maps": [{"x": [...], "y": [...]}, ...]}   # np.interp
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from petalops.data.load import Dataset
from petalops.errors import DataError
from petalops.pipeline.split import Split

ISOTONIC_MIN_ROWS = 1000
REPLICATES = 20
EPS = 1e-6
Method = Literal["auto", "sigmoid", "isotonic"]


def logit(p: npt.NDArray[np.float64], eps: float = EPS) -> npt.NDArray[np.float64]:
    """Log-odds of probabilities clipped to ``[eps, 1 - eps]``."""
    q = np.clip(p, eps, 1.0 - eps)
    return np.asarray(np.log(q) - np.log1p(-q), dtype=np.float64)


def _sigmoid_map(p: npt.NDArray[np.float64], hit: npt.NDArray[np.bool_]) -> dict[str, float]:
    """Platt scaling of one class. Platt's targets ``(N+ + 1) / (N+ + 2)`` and
    ``1 / (N- + 2)`` keep a perfectly separated held-out split (common on small, easy data)
    from fitting an infinitely steep sigmoid; each row enters twice, weighted by its target."""
    positives = float(hit.sum())
    negatives = float(len(hit) - positives)
    target = np.where(hit, (positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0))
    z = logit(p)
    x = np.concatenate([z, z])[:, None]
    y = np.concatenate([np.ones(len(z)), np.zeros(len(z))])
    weights = np.concatenate([target, 1.0 - target])
    model = LogisticRegression(C=1e6, max_iter=1000)
    model.fit(x, y, sample_weight=weights)
    return {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}


def _isotonic_map(p: npt.NDArray[np.float64], hit: npt.NDArray[np.bool_]) -> dict[str, list[float]]:
    model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    model.fit(p, hit.astype(np.float64))
    return {
        "x": [float(v) for v in model.X_thresholds_],
        "y": [float(v) for v in model.y_thresholds_],
    }


def _maps(
    proba: npt.NDArray[np.float64], y_true: npt.NDArray[np.int64], method: str, n_classes: int
) -> list[dict[str, Any]]:
    fitted = _isotonic_map if method == "isotonic" else _sigmoid_map
    mapped = [1] if n_classes == 2 else range(n_classes)
    maps: list[dict[str, Any]] = [{} for _ in range(n_classes)]
    for k in mapped:
        maps[k] = fitted(proba[:, k], y_true == k)
    return maps


def fit_calibration(
    proba: npt.NDArray[np.float64],
    y_true: npt.NDArray[np.int64],
    classes: list[str],
    method: Method = "auto",
    *,
    replicates: int = REPLICATES,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-class calibration of ``proba`` (rows x classes) against the true class indices,
    and ``replicates`` bootstrap refits of it (seeded)."""
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if proba.ndim != 2 or proba.shape[1] != len(classes) or len(y_true) != proba.shape[0]:
        raise DataError(
            f"cannot calibrate: probabilities of shape {proba.shape} for {len(y_true)} labels "
            f"and {len(classes)} classes; pass one row of class probabilities per label"
        )
    if len(y_true) < 2:
        raise DataError(f"cannot calibrate on {len(y_true)} held-out rows; raise split.test_size")
    chosen = method
    if chosen == "auto":
        chosen = "isotonic" if len(y_true) >= ISOTONIC_MIN_ROWS else "sigmoid"
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, len(y_true), len(y_true)) for _ in range(replicates)]
    return {
        "method": chosen,
        "rows": len(y_true),
        "classes": list(classes),
        "eps": EPS,
        "maps": _maps(proba, y_true, chosen, len(classes)),
        "replicates": [_maps(proba[r], y_true[r], chosen, len(classes)) for r in resamples],
    }


def calibrate(pipeline: Pipeline, split: Split, dataset: Dataset, seed: int = 0) -> dict[str, Any]:
    """The calibration of the fitted Pipeline's probabilities on the held-out rows."""
    proba = pipeline.predict_proba(pd.DataFrame(split.x_test, columns=dataset.features))
    return fit_calibration(
        np.asarray(proba, dtype=np.float64), split.y_test, dataset.classes, seed=seed
    )
