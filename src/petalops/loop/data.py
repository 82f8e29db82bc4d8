"""The retraining data of a cycle: the training set plus every labelled live row, one CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from petalops.config import Settings
from petalops.data.load import load_dataset
from petalops.errors import PetalopsError
from petalops.monitoring.store import MonitorStore


def retraining_data(settings: Settings, store: MonitorStore, path: Path) -> tuple[int, int]:
    """Write training data + labelled live rows as one CSV; (training rows, new rows)."""
    dataset = load_dataset(settings.data)
    x_new, y_new = store.labelled_rows(settings.project)
    base = pd.DataFrame(dataset.x, columns=dataset.features)
    base[settings.data.target] = [dataset.classes[int(i)] for i in dataset.y]
    if len(y_new) and x_new.shape[1] != len(dataset.features):
        raise PetalopsError(
            f"labelled live rows have {x_new.shape[1]} features, the training data "
            f"{len(dataset.features)}; retraining needs the same schema"
        )
    fresh = pd.DataFrame(x_new.reshape(len(y_new), len(dataset.features)), columns=dataset.features)
    valid = (y_new >= 0) & (y_new < len(dataset.classes))
    fresh = fresh[valid]
    fresh[settings.data.target] = [dataset.classes[int(i)] for i in np.asarray(y_new)[valid]]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([base, fresh], ignore_index=True).to_csv(path, index=False)
    return len(base), len(fresh)
