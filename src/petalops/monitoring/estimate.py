"""Estimated performance without labels: accuracy, macro-F1 and per-class recall of a window
of logged predictions, read off the model's calibrated probabilities, with a band.

The idea is confidence-based performance estimation (CBPE, as NannyML describes it): when
the probabilities are calibrated, a row predicted with calibrated confidence 0.8 is right
with probability 0.8, so the expected confusion matrix of a window is a sum over its rows
and needs no label. Written here on numpy because no maintained library does it online:
NannyML is an offline, pandas-frame library with its own dependency tree, far heavier than
the few sums below. The calibration itself is fitted by scikit-learn at training time
(:mod:`petalops.pipeline.calibrate`); applying it is a softmax (temperature), ``np.interp``
(isotonic) or a sigmoid, the same functions scikit-learn's calibrators evaluate, without
importing scikit-learn here.

The band is the spread of the metric the labels could give: each row's true class is drawn
from its calibrated probabilities (``draws`` times, seeded, each draw through one of the
calibration's bootstrap replicates, so the uncertainty of a calibration learnt on a few
hundred rows is in the band too) and the metric computed on each draw; the band holds the
central ``level`` of them. It does not
cover a broken calibration (concept drift: the same inputs now mean another class), which
no label-free estimate can see; a growing gap to the realized figure, once labels come, is
that signal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from petalops.errors import DataError

DRAWS = 200
LEVEL = 0.95
# Draws are simulated in chunks of about this many (draw, row) pairs, bounding memory.
_CHUNK_CELLS = 2_000_000


def calibrated(
    calibration: dict[str, Any] | None,
    proba: npt.NDArray[np.float64],
    maps: list[dict[str, Any]] | None = None,
) -> Any:
    """``proba`` (rows x classes) through the stored calibration, rows summing to 1
    (through ``maps``, e.g. one of its bootstrap ``replicates``, when given).

    ``None`` (a version trained before calibration was stored) returns ``proba`` as it is.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if calibration is None:
        return proba
    maps = calibration["maps"] if maps is None else maps
    method = calibration["method"]
    eps = float(calibration.get("eps", 1e-6))
    if method == "temperature":
        scaled = maps[0]["beta"] * np.log(np.clip(proba, eps, 1.0))
        scaled -= scaled.max(axis=1, keepdims=True)
        weights = np.exp(scaled)
        return weights / weights.sum(axis=1, keepdims=True)
    if len(maps) != proba.shape[1]:
        raise DataError(
            f"the calibration has {len(maps)} classes but the logged probabilities have "
            f"{proba.shape[1]}; estimate each version against its own calibration"
        )
    out = proba.copy()
    for k, spec in enumerate(maps):
        if not spec:
            continue
        p = proba[:, k]
        if method == "isotonic":
            out[:, k] = np.interp(p, spec["x"], spec["y"])
        else:
            q = np.clip(p, eps, 1.0 - eps)
            z = np.log(q) - np.log1p(-q)
            out[:, k] = 1.0 / (1.0 + np.exp(-(spec["a"] * z + spec["b"])))
    if len(maps) == 2 and not maps[0]:
        out[:, 0] = 1.0 - out[:, 1]
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.full_like(out, 1.0 / out.shape[1]), where=total > 0)


@dataclass(frozen=True)
class Band:
    """A figure and its band (``low``/``high``; ``None`` when it cannot be computed)."""

    value: float | None
    low: float | None = None
    high: float | None = None

    def contains(self, value: float) -> bool:
        return self.low is not None and self.high is not None and self.low <= value <= self.high

    def to_json(self) -> dict[str, float | None]:
        return {"value": _round(self.value), "low": _round(self.low), "high": _round(self.high)}


@dataclass(frozen=True)
class Estimate:
    """The estimated performance of one window (and the realized one where labels exist)."""

    rows: int
    accuracy: Band
    macro_f1: Band
    recall: dict[str, Band]
    calibration: str  # temperature, isotonic, sigmoid, or "none" (raw probabilities)
    level: float = LEVEL
    labelled: int = 0
    realized: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def sufficient(self) -> bool:
        return self.accuracy.value is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "sufficient": self.sufficient,
            "calibration": self.calibration,
            "level": self.level,
            "accuracy": self.accuracy.to_json(),
            "macro_f1": self.macro_f1.to_json(),
            "recall": {name: band.to_json() for name, band in self.recall.items()},
            "labelled": self.labelled,
            "realized": self.realized,
            **({"reason": self.reason} if self.reason else {}),
        }


def _round(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def expected_metrics(
    confidence: npt.NDArray[np.float64], predicted: npt.NDArray[np.int64]
) -> tuple[float, float, npt.NDArray[np.float64]]:
    """Accuracy, macro-F1 and per-class recall of the expected confusion matrix.

    ``confidence`` holds calibrated probabilities (rows x classes). Expected true positives
    of class k: the summed probability of k over rows predicted k; expected positives: its
    sum over all rows. A class counts in macro-F1 when predicted at least once or expected on
    at least half a row, like the union of seen classes that realized macro-F1 uses.
    """
    n, k = confidence.shape
    onehot = np.zeros((n, k), dtype=np.float64)
    onehot[np.arange(n), predicted] = 1.0
    tp = (confidence * onehot).sum(axis=0)
    positives = confidence.sum(axis=0)
    predicted_count = onehot.sum(axis=0)
    accuracy = float(tp.sum() / n)
    recall = np.divide(tp, positives, out=np.full(k, np.nan), where=positives > 0)
    denominator = positives + predicted_count
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    seen = (predicted_count > 0) | (positives >= 0.5)
    macro = float(f1[seen].mean()) if seen.any() else float("nan")
    return accuracy, macro, recall


def _simulate(
    confidences: list[npt.NDArray[np.float64]],
    predicted: npt.NDArray[np.int64],
    draws: int,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Accuracy, macro-F1 (draws,) and recall (draws, classes) of simulated label draws,
    shared evenly between the calibrations in ``confidences``."""
    accuracy, macro, recall = [], [], []
    share = -(-draws // len(confidences))
    for confidence in confidences:
        a, m, r = _simulate_one(confidence, predicted, share, rng)
        accuracy.append(a)
        macro.append(m)
        recall.append(r)
    return np.concatenate(accuracy), np.concatenate(macro), np.concatenate(recall)


def _simulate_one(
    confidence: npt.NDArray[np.float64],
    predicted: npt.NDArray[np.int64],
    draws: int,
    rng: np.random.Generator,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    n, k = confidence.shape
    cumulative = np.cumsum(confidence, axis=1)
    cumulative[:, -1] = 1.0
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    accuracy, macro, recall = [], [], []
    for start in range(0, draws, chunk):
        b = min(chunk, draws - start)
        u = rng.random((b, n, 1))
        truth = np.minimum((u > cumulative[None, :, :]).sum(axis=2), k - 1)
        cells = (np.arange(b)[:, None] * k * k + truth * k + predicted[None, :]).ravel()
        matrix = np.bincount(cells, minlength=b * k * k).reshape(b, k, k).astype(np.float64)
        diagonal = np.diagonal(matrix, axis1=1, axis2=2)
        actual = matrix.sum(axis=2)
        called = matrix.sum(axis=1)
        accuracy.append(diagonal.sum(axis=1) / n)
        recall.append(
            np.divide(diagonal, actual, out=np.full_like(diagonal, np.nan), where=actual > 0)
        )
        denominator = actual + called
        f1 = np.divide(
            2 * diagonal, denominator, out=np.zeros_like(diagonal), where=denominator > 0
        )
        seen = denominator > 0
        macro.append((f1 * seen).sum(axis=1) / np.maximum(seen.sum(axis=1), 1))
    return np.concatenate(accuracy), np.concatenate(macro), np.concatenate(recall)


def realized_metrics(
    predicted: npt.NDArray[np.int64], labels: npt.NDArray[np.int64], classes: list[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class recall the labels give (the same definitions)."""
    k = len(classes)
    matrix = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k).astype(float)
    diagonal = np.diagonal(matrix)
    actual = matrix.sum(axis=1)
    denominator = actual + matrix.sum(axis=0)
    f1 = np.divide(2 * diagonal, denominator, out=np.zeros(k), where=denominator > 0)
    seen = denominator > 0
    recall = np.divide(diagonal, actual, out=np.full(k, np.nan), where=actual > 0)
    return {
        "accuracy": _round(float(diagonal.sum() / len(labels))),
        "macro_f1": _round(float(f1[seen].mean()) if seen.any() else float("nan")),
        "recall": {name: _round(float(r)) for name, r in zip(classes, recall, strict=True)},
    }


def estimate(
    proba: npt.NDArray[np.float64],
    predicted: npt.NDArray[np.int64],
    calibration: dict[str, Any] | None,
    classes: list[str],
    *,
    labels: npt.NDArray[np.int64] | None = None,
    min_rows: int = 1,
    draws: int = DRAWS,
    level: float = LEVEL,
    seed: int = 0,
) -> Estimate:
    """The estimated performance of one window of predictions and their probabilities.

    ``labels`` (a class index per row, ``-1`` where none came) adds the realized figures of
    the labelled rows, and the estimated accuracy of those same rows
    (``realized["estimated_accuracy"]``). A window of fewer than ``min_rows`` rows is not
    estimated: its figures are ``None`` and ``reason`` says why.
    """
    proba = np.asarray(proba, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.int64)
    method = "none" if calibration is None else str(calibration["method"])
    n = int(proba.shape[0]) if proba.ndim == 2 else 0
    if proba.ndim != 2 or proba.shape[1] != len(classes) or len(predicted) != n:
        raise DataError(
            f"probabilities of shape {proba.shape} for {len(predicted)} predictions and "
            f"{len(classes)} classes; log one row of class probabilities per prediction"
        )
    realized: dict[str, Any] = {}
    labelled = 0
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        known = labels >= 0
        labelled = int(known.sum())
        if labelled:
            realized = realized_metrics(predicted[known], labels[known], classes)
    if n < min_rows or n == 0:
        return Estimate(
            rows=n,
            accuracy=Band(None),
            macro_f1=Band(None),
            recall={name: Band(None) for name in classes},
            calibration=method,
            level=level,
            labelled=labelled,
            realized=realized,
            reason=f"window too small to estimate: {n} rows, need at least {min_rows} "
            "(monitor.estimate_min_rows); wait for more traffic or widen it",
        )
    confidence = calibrated(calibration, proba)
    accuracy, macro, recall = expected_metrics(confidence, predicted)
    if realized and labels is not None:
        # The estimate on exactly the labelled rows: the like-for-like comparison when
        # labels come for part of the traffic only.
        on_labelled = confidence[np.arange(n), predicted][labels >= 0]
        realized["estimated_accuracy"] = _round(float(on_labelled.mean()))
    replicates = (calibration or {}).get("replicates") or []
    confidences = [calibrated(calibration, proba, maps) for maps in replicates] or [confidence]
    sim_accuracy, sim_macro, sim_recall = _simulate(
        confidences, predicted, draws, np.random.default_rng(seed)
    )
    tail = (1.0 - level) / 2 * 100

    def band(value: float, simulated: npt.NDArray[np.float64]) -> Band:
        finite = simulated[np.isfinite(simulated)]
        if math.isnan(value) or not len(finite):
            return Band(None if math.isnan(value) else value)
        low, high = np.percentile(finite, [tail, 100 - tail])
        return Band(value, float(min(low, value)), float(max(high, value)))

    return Estimate(
        rows=n,
        accuracy=band(accuracy, sim_accuracy),
        macro_f1=band(macro, sim_macro),
        recall={name: band(float(recall[j]), sim_recall[:, j]) for j, name in enumerate(classes)},
        calibration=method,
        level=level,
        labelled=labelled,
        realized=realized,
    )
