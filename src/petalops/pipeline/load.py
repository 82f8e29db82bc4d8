"""The load step: the training data (read, validated and fingerprinted by `petalops.data`) and
the identity of the training run it starts (its recorded config and train key).

Every data error is raised here, before anything is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from petalops.config import Settings
from petalops.data.load import Dataset, load_dataset
from petalops.pipeline.identity import source_key, train_key, training_config


@dataclass(frozen=True)
class TrainingData:
    """The validated dataset with the config it is trained under and their joint key."""

    dataset: Dataset
    config: dict[str, Any]
    key: str
    # The raw-bytes key of `petalops.pipeline.identity` ("" when the source has no file).
    source_key: str = ""

    @property
    def sha256(self) -> str:
        return self.dataset.fingerprint.sha256


def load(settings: Settings, data_path: str | Path | None = None) -> TrainingData:
    """Load and validate the data named by the settings (or ``data_path``)."""
    raw = source_key(settings, data_path) or ""  # the bytes before they are parsed
    dataset = load_dataset(settings.data, data_path)
    config = training_config(settings)
    return TrainingData(dataset, config, train_key(config, dataset.fingerprint.sha256), raw)
