"""The calibrate step: how far to trust the model's own probabilities, learnt on the held-out
rows and stored with the version (``profile["calibration"]``, plain JSON, never a pickle).

Label-free performance estimation (:mod:`petalops.monitoring.estimate`) reads a window's
expected accuracy off the probabilities, so they must mean what they say: of the rows given
0.8, about 80 % right. The map from the model's probabilities to observed frequencies is
learnt on the held-out split:

* ``temperature`` scaling, the default below ``ISOTONIC_MIN_ROWS`` held-out rows: one
  number for all classes, ``softmax(beta * log p)``, the method of scikit-learn's
  ``CalibratedClassifierCV(method="temperature")`` (same loss, same bounded search). It is
  fitted here on the stored probabilities, with the true class smoothed by ``1 / (n + 2)``
  (Laplace's rule): scikit-learn's version takes neither soft targets nor probabilities
  without the model, and keeps ``beta`` in a private attribute. Without the smoothing, a
  held-out split the model gets all right (common on small, easy data) would claim
  certainty;
* ``isotonic`` regression per class (scikit-learn's ``IsotonicRegression``, one-vs-rest):
  any monotone shape, which needs many rows not to overfit (scikit-learn's own guidance),
  chosen from ``ISOTONIC_MIN_ROWS`` held-out rows on;
* ``sigmoid`` (Platt scaling per class, scikit-learn's ``LogisticRegression`` on the
  log-odds with Platt's smoothed targets), on request.

On a small held-out split (fewer than ``ISOTONIC_MIN_ROWS`` rows: Iris holds 30) the map
is learnt from more than the split: the training rows' out-of-fold probabilities (5-fold
``cross_val_predict`` of the same Pipeline) join the held-out ones, as scikit-learn's
``CalibratedClassifierCV(ensemble=False)`` calibrates a model fitted on all its rows. Thirty
rows cannot tell a well-calibrated model from one a single confident mistake away.

Per-class maps are renormalised to sum to 1 per row, as scikit-learn's
``CalibratedClassifierCV`` does; with two classes only the positive class is mapped.

A calibration learnt on a few hundred rows is itself uncertain (a lucky held-out split makes
the model look better than it is), so ``REPLICATES`` more maps are fitted on bootstrap
resamples of the held-out rows; the estimate's band draws from them as well.

JSON layout::

    {"method": "temperature", "rows": 30, "classes": ["setosa", ...], "eps": 1e-06,
     "maps": [{"beta": 1.8}],                          # softmax(beta * log p)
     "replicates": [[{"beta": 1.6}], ...]}             # the same, per bootstrap resample
    {"method": "isotonic", ..., "maps": [{"x": [...], "y": [...]}, ...]}   # np.interp, a class
    {"method": "sigmoid", ..., "maps": [{"a": 1.7, "b": -0.3}, ...]}  # 1/(1+exp(-(a z + b)))
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.base import clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from petalops.data.load import Dataset
from petalops.errors import DataError
from petalops.pipeline.split import Split

ISOTONIC_MIN_ROWS = 1000
REPLICATES = 20
CV_FOLDS = 5
EPS = 1e-6
Method = Literal["auto", "temperature", "sigmoid", "isotonic"]


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


def _temperature(
    proba: npt.NDArray[np.float64], y_true: npt.NDArray[np.int64], smoothing: float
) -> dict[str, float]:
    """The inverse temperature minimising the log loss against the smoothed true class."""
    n, k = proba.shape
    logits = np.log(np.clip(proba, EPS, 1.0))
    target = np.full((n, k), smoothing / max(k - 1, 1))
    target[np.arange(n), y_true] = 1.0 - smoothing

    def loss(log_beta: float) -> float:
        return float(-(target * log_softmax(np.exp(log_beta) * logits, axis=1)).sum() / n)

    found = minimize_scalar(loss, bounds=(-10.0, 10.0), method="bounded")
    return {"beta": float(np.exp(found.x))}


def _maps(
    proba: npt.NDArray[np.float64],
    y_true: npt.NDArray[np.int64],
    method: str,
    n_classes: int,
    smoothing: float = 0.0,
) -> list[dict[str, Any]]:
    if method == "temperature":
        return [_temperature(proba, y_true, smoothing)]
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
    smooth: bool = True,
) -> dict[str, Any]:
    """The calibration of ``proba`` (rows x classes) against the true class indices, and
    ``replicates`` bootstrap refits of it (seeded). ``smooth=False`` fits temperature
    scaling on the hard labels, as scikit-learn does."""
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
        chosen = "isotonic" if len(y_true) >= ISOTONIC_MIN_ROWS else "temperature"
    smoothing = 1.0 / (len(y_true) + 2) if smooth else 0.0
    rng = np.random.default_rng(seed)
    resamples = [rng.integers(0, len(y_true), len(y_true)) for _ in range(replicates)]
    return {
        "method": chosen,
        "rows": len(y_true),
        "classes": list(classes),
        "eps": EPS,
        "maps": _maps(proba, y_true, chosen, len(classes), smoothing),
        "replicates": [
            _maps(proba[r], y_true[r], chosen, len(classes), smoothing) for r in resamples
        ],
    }


def calibrate(pipeline: Pipeline, split: Split, dataset: Dataset, seed: int = 0) -> dict[str, Any]:
    """The calibration of the fitted Pipeline's probabilities on the held-out rows (and, when
    they are few, the training rows' out-of-fold probabilities)."""
    proba = pipeline.predict_proba(pd.DataFrame(split.x_test, columns=dataset.features))
    proba = np.asarray(proba, dtype=np.float64)
    truth = split.y_test
    counts = np.bincount(split.y_train, minlength=len(dataset.classes))
    folds = min(CV_FOLDS, int(counts.min()) if len(counts) else 0)
    extra = 0
    if len(truth) < ISOTONIC_MIN_ROWS and folds >= 2:
        # One BLAS thread, as in the fit step: these refits are as small as the fit, and
        # with OpenBLAS's threads on a busy 2-core box they took 22 s of a 126 s profiled
        # train (cross_val_predict on Iris: 10.8 s, 0.8 s with one thread; same numbers).
        with threadpool_limits(limits=1):
            out_of_fold = cross_val_predict(
                clone(pipeline),
                pd.DataFrame(split.x_train, columns=dataset.features),
                split.y_train,
                cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                method="predict_proba",
            )
        proba = np.vstack([np.asarray(out_of_fold, dtype=np.float64), proba])
        truth = np.concatenate([split.y_train, truth])
        extra = len(split.y_train)
    calibration = fit_calibration(proba, truth, dataset.classes, seed=seed)
    calibration["out_of_fold_rows"] = extra
    return calibration
