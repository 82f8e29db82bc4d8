"""The profile of a table of features: what the reference profile stored with every model
version holds (`petalops.pipeline.profile.training_profile`), and what a scored batch file
(`petalops.monitoring.batchprofile`) and a first serving window
(`petalops.monitoring.firstwindow`) are summarised as, so either can stand where the
training profile does.

Drift detection compares against it, so it keeps a bounded sample of the raw values (for
two-sample tests such as KS) besides quantiles and a histogram per feature.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt

from petalops.data.schema import MAX_LISTED_CATEGORIES, Schema, is_missing

SAMPLE_LIMIT = 5000
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
BINS = 10


def build_profile(
    x: npt.NDArray[Any],
    y: npt.NDArray[np.int64] | None,
    features: list[str],
    classes: list[str],
    predicted: npt.NDArray[np.int64] | None = None,
    seed: int = 42,
    schema: Schema | None = None,
) -> dict[str, Any]:
    """Summarise features and labels as JSON-ready data: per numeric feature its range,
    quantiles, histogram and a sample; per categorical one the share of each category; for
    both the share of missing values. ``y`` is ``None`` for rows without labels (served or
    scored rows): the profile then has no ``class_balance``."""
    schema = schema or Schema.numeric(features)
    rng = np.random.default_rng(seed)
    rows = x.shape[0]
    pick = np.sort(rng.choice(rows, SAMPLE_LIMIT, replace=False)) if rows > SAMPLE_LIMIT else None
    profile_features: dict[str, Any] = {}
    for j, (name, column_schema) in enumerate(zip(features, schema.columns, strict=True)):
        if column_schema.kind == "categorical":
            profile_features[name] = categorical_profile(x[:, j])
            continue
        values = np.asarray(x[:, j], dtype=np.float64)
        present = ~np.isnan(values)
        column = values[present]
        if not len(column):  # every training value missing: nothing to compare against
            column = np.zeros(1)
        counts, edges = np.histogram(column, bins=BINS)
        sample = values[pick] if pick is not None else values
        sample = sample[~np.isnan(sample)]
        profile_features[name] = {
            "kind": column_schema.kind,
            "min": float(column.min()),
            "max": float(column.max()),
            "mean": float(column.mean()),
            "std": float(column.std()),
            "missing": float(1.0 - present.mean()) if rows else 0.0,
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

    profile: dict[str, Any] = {"rows": rows, "features": profile_features, "classes": classes}
    if y is not None:
        profile["class_balance"] = balance(y)
    if predicted is not None:
        profile["prediction_balance"] = balance(predicted)
    return profile


def categorical_profile(values: npt.NDArray[Any]) -> dict[str, Any]:
    """The share of each category (most frequent first) and of missing values."""
    missing = np.asarray([is_missing(v) for v in values], dtype=bool)
    present = [str(v) for v, m in zip(values, missing, strict=True) if not m]
    counts = Counter(present).most_common(MAX_LISTED_CATEGORIES)
    total = max(len(values), 1)
    return {
        "kind": "categorical",
        "categories": {k: n / total for k, n in counts},
        "missing": float(missing.sum() / total),
    }
