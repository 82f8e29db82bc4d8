"""What identifies a training run: the config it records, the train key (config + the content
hash of the parsed data) and the source key (config + the raw bytes of the data file).

The source key is what lets the second `make run` (`train --skip-if-unchanged`) answer
"unchanged" without pandas, scikit-learn or MLflow: it hashes the file as it is on disk and
looks the key up among the registered versions' tags. A version carries it from the train
that registered it, or from the first skip check that found it by its train key (a version
trained before source keys existed, or the same rows in a reformatted file).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

import petalops
from petalops.config import IRIS_SOURCE, Settings

SOURCE_KEY_TAG = "petalops.source_key"
# Part of every source key: raise it when the way a file becomes training rows changes.
SOURCE_KEY_FORMAT = 1


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


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def source_file(source: str) -> Path | None:
    """The file a data source is read from; for the bundled Iris set the CSV inside
    scikit-learn, found without importing it. None if there is none to read."""
    if source != IRIS_SOURCE:
        return Path(source)
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "iris.csv"


def source_key(settings: Settings, data_path: str | Path | None = None) -> str | None:
    """The config and the raw bytes of the data file in one hash, with the versions of what
    turns the bytes into rows (petalops, pandas; scikit-learn for Iris). None when the file
    cannot be read: loading it then says why."""
    source = str(data_path) if data_path else settings.data.source
    path = source_file(source)
    if path is None or not path.is_file():
        return None
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    config = training_config(settings)
    blob = json.dumps(
        {
            "format": SOURCE_KEY_FORMAT,
            "config": {**config, "data": {**config["data"], "source": None}},
            "iris": source == IRIS_SOURCE,
            "suffix": path.suffix.lower(),
            "bytes": digest.hexdigest(),
            "readers": {
                "petalops": petalops.__version__,
                "pandas": _version("pandas"),
                "scikit-learn": _version("scikit-learn") if source == IRIS_SOURCE else "",
            },
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()
