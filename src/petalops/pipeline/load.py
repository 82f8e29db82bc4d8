"""The load step: the training data (read, validated and fingerprinted by `petalops.data`) and
the identity of the training run it starts (its recorded config and train key).

Every data error is raised here, before anything is logged.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from petalops.config import Settings
from petalops.data.load import Dataset, load_dataset


@dataclass(frozen=True)
class TrainingData:
    """The validated dataset with the config it is trained under and their joint key."""

    dataset: Dataset
    config: dict[str, Any]
    key: str

    @property
    def sha256(self) -> str:
        return self.dataset.fingerprint.sha256


def training_config(settings: Settings) -> dict[str, Any]:
    """The settings that determine the fitted model (recorded with the run for reproduction)."""
    return {
        "project": settings.project,
        "seed": settings.seed,
        "data": settings.data.model_dump(mode="json"),
        "model": settings.model.model_dump(mode="json", by_alias=True),
        "split": settings.split.model_dump(mode="json"),
        "gate": settings.gate.model_dump(mode="json"),
    }


def train_key(config: dict[str, Any], data_sha256: str) -> str:
    """One hash of the config and the data content (where the data was read from is left out,
    so a moved file with the same rows gives the same key)."""
    blob = json.dumps(
        {"config": {**config, "data": {**config["data"], "source": None}}, "data": data_sha256},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def load(settings: Settings, data_path: str | Path | None = None) -> TrainingData:
    """Load and validate the data named by the settings (or ``data_path``)."""
    dataset = load_dataset(settings.data, data_path)
    config = training_config(settings)
    return TrainingData(dataset, config, train_key(config, dataset.fingerprint.sha256))
