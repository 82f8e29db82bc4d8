"""The profile step: the reference profile of the training features, stored with every model
version (its layout: `petalops.data.profile.build_profile`, shared with the profiles of
scored batches and of first serving windows)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from petalops.config import Settings
from petalops.data.load import Dataset
from petalops.data.profile import (
    BINS,
    QUANTILES,
    SAMPLE_LIMIT,
    build_profile,
    categorical_profile,
)
from petalops.pipeline.split import Split

__all__ = [
    "BINS",
    "QUANTILES",
    "SAMPLE_LIMIT",
    "build_profile",
    "categorical_profile",
    "training_profile",
]


def training_profile(
    settings: Settings, dataset: Dataset, split: Split, pipeline: Pipeline
) -> dict[str, Any]:
    """The profile of the training rows, with the fitted Pipeline's own predictions on them."""
    predicted = pipeline.predict(split.frame(split.x_train))
    return build_profile(
        split.x_train,
        split.y_train,
        dataset.features,
        dataset.classes,
        predicted=np.asarray(predicted, dtype=np.int64),
        seed=settings.seed,
        schema=dataset.schema,
    )
