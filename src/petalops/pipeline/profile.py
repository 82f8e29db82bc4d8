"""The profile step: the reference profile of the training features, stored with every model
version.

Drift detection compares live traffic against it, so it keeps a bounded sample of the raw
values (for two-sample tests such as KS) besides quantiles and a histogram per feature.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.pipeline import Pipeline

from petalops.config import Settings
from petalops.data.load import Dataset
from petalops.pipeline.split import Split

SAMPLE_LIMIT = 5000
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
BINS = 10


def build_profile(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int64],
    features: list[str],
    classes: list[str],
    predicted: npt.NDArray[np.int64] | None = None,
    seed: int = 42,
) -> dict[str, Any]:
    """Summarise training features and labels as JSON-ready data."""
    rng = np.random.default_rng(seed)
    rows = x.shape[0]
    pick = np.sort(rng.choice(rows, SAMPLE_LIMIT, replace=False)) if rows > SAMPLE_LIMIT else None
    profile_features: dict[str, Any] = {}
    for j, name in enumerate(features):
        column = x[:, j]
        counts, edges = np.histogram(column, bins=BINS)
        sample = column[pick] if pick is not None else column
        profile_features[name] = {
            "min": float(column.min()),
            "max": float(column.max()),
            "mean": float(column.mean()),
            "std": float(column.std()),
            "quantiles": {
                str(q): float(v)
                for q, v in zip(QUANTILES, np.quantile(column, QUANTILES), strict=True)
            },
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
            "sample": sample.tolist(),
        }

    def balance(labels: npt.NDArray[np.int64]) -> dict[str, float]:
        counts = np.bincount(labels, minlength=len(classes))
        return {c: float(n / max(len(labels), 1)) for c, n in zip(classes, counts, strict=True)}

    profile: dict[str, Any] = {
        "rows": rows,
        "features": profile_features,
        "classes": classes,
        "class_balance": balance(y),
    }
    if predicted is not None:
        profile["prediction_balance"] = balance(predicted)
    return profile


def training_profile(
    settings: Settings, dataset: Dataset, split: Split, pipeline: Pipeline
) -> dict[str, Any]:
    """The profile of the training rows, with the fitted Pipeline's own predictions on them."""
    predicted = pipeline.predict(pd.DataFrame(split.x_train, columns=dataset.features))
    return build_profile(
        split.x_train,
        split.y_train,
        dataset.features,
        dataset.classes,
        predicted=np.asarray(predicted, dtype=np.int64),
        seed=settings.seed,
    )
