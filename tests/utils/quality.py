"""A calibrated Iris model's reference profile and prediction records of it, for the tests of
estimated quality (monitoring overview, report, alerts, metrics and the CLI)."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from petalops.config import DataSettings
from petalops.data.load import load_dataset
from petalops.pipeline.calibrate import fit_calibration
from petalops.pipeline.profile import build_profile


@cache
def iris_model() -> tuple[LogisticRegression, dict[str, Any]]:
    """A LogisticRegression on Iris and its profile with the calibration, as training stores."""
    data = load_dataset(DataSettings())
    model = LogisticRegression(max_iter=500).fit(data.x, data.y)
    profile = build_profile(data.x, data.y, data.features, data.classes)
    profile["calibration"] = fit_calibration(model.predict_proba(data.x), data.y, data.classes)
    return model, profile


def iris_records(
    n: int,
    *,
    version: str = "1",
    shift: float = 0.0,
    labelled: bool = True,
    seed: int = 0,
    start: float | None = None,
) -> list[dict[str, Any]]:
    """``n`` prediction records of Iris rows (``shift`` added to every feature), with the
    model's probabilities and, if ``labelled``, the true class."""
    data = load_dataset(DataSettings())
    model, _ = iris_model()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(data.x), n)
    x = data.x[pick] + shift
    proba = model.predict_proba(x)
    t0 = time.time() - n if start is None else start
    return [
        {
            "request_id": f"{version}-{seed}-{i}",
            "ts": t0 + i,
            "model_name": "iris",
            "model_version": version,
            "variant": "champion",
            "route": "/v1/predict",
            "status": 200,
            "features": x[i].tolist(),
            "prediction": int(proba[i].argmax()),
            "probabilities": proba[i].tolist(),
            "label": int(data.y[pick[i]]) if labelled else None,
        }
        for i in range(n)
    ]


def boundary_records(n: int, *, version: str = "1", seed: int = 0) -> list[dict[str, Any]]:
    """``n`` unlabelled records of rows halfway between a versicolor and a virginica row:
    inside the training range, where the model is unsure."""
    data = load_dataset(DataSettings())
    model, _ = iris_model()
    rng = np.random.default_rng(seed)
    x = (
        data.x[rng.choice(np.flatnonzero(data.y == 1), n)]
        + data.x[rng.choice(np.flatnonzero(data.y == 2), n)]
    ) / 2
    proba = model.predict_proba(x)
    now = time.time()
    return [
        {
            "request_id": f"b{version}-{seed}-{i}",
            "ts": now + i,
            "model_name": "iris",
            "model_version": version,
            "variant": "champion",
            "status": 200,
            "features": x[i].tolist(),
            "prediction": int(proba[i].argmax()),
            "probabilities": proba[i].tolist(),
        }
        for i in range(n)
    ]
