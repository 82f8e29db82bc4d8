"""The split step: held-out test rows chosen by the seed (stratified unless told otherwise).

`petalops tune` cross-validates on exactly these training rows, so both call `split_indices`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.model_selection import train_test_split

from petalops.config import Settings
from petalops.data.load import Dataset, feature_frame
from petalops.data.schema import Schema


@dataclass(frozen=True)
class Split:
    """Training and held-out rows of one dataset (arrays as `Dataset.x`)."""

    x_train: npt.NDArray[Any]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[Any]
    y_test: npt.NDArray[np.int64]
    schema: Schema = field(default_factory=lambda: Schema(()))

    def frame(self, x: npt.NDArray[Any]) -> pd.DataFrame:
        """Rows of this split as the frame the Pipeline takes."""
        return feature_frame(x, self.schema)


def split_indices(
    settings: Settings, y: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Row indices of the training and the test split (the same for the same seed)."""
    idx = np.arange(len(y))
    train_idx, test_idx = train_test_split(
        idx,
        test_size=settings.split.test_size,
        random_state=settings.seed,
        stratify=y if settings.split.stratify else None,
    )
    return np.asarray(train_idx), np.asarray(test_idx)


def split(settings: Settings, dataset: Dataset) -> Split:
    """Split the dataset into training and held-out rows."""
    train_idx, test_idx = split_indices(settings, dataset.y)
    return Split(
        x_train=dataset.x[train_idx],
        y_train=dataset.y[train_idx],
        x_test=dataset.x[test_idx],
        y_test=dataset.y[test_idx],
        schema=dataset.schema,
    )
