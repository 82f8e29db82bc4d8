"""Real tabular data sets beyond Iris, written as CSV files the way a user would bring them:
Palmer penguins (categorical columns and missing values, from the ``palmerpenguins`` package)
and scikit-learn's bundled wine (3 classes) and breast-cancer (binary) sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

PENGUIN_FEATURES = [
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
]


def penguins_csv(directory: Path) -> Path:
    """The penguins set: predict ``species`` from island, sex and four measurements."""
    from palmerpenguins import load_penguins

    path = directory / "penguins.csv"
    load_penguins()[[*PENGUIN_FEATURES, "species"]].to_csv(path, index=False)
    return path


def sklearn_csv(directory: Path, name: str) -> Path:
    """``wine`` or ``breast_cancer`` from scikit-learn, with a string ``label`` column."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.data.copy()
    frame.columns = [c.replace(" ", "_").replace("/", "_") for c in frame.columns]
    frame["label"] = [str(bunch.target_names[i]) for i in bunch.target]
    path = directory / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def settings_for(path: Path, target: str = "species", **model: object) -> dict[str, object]:
    """Settings keyword arguments for a data file of one's own."""
    return {"data": {"source": str(path), "target": target}, "model": model}


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def trained_bundle(
    directory: Path, settings: Any, path: Path | None = None
) -> tuple[Path, str, Any, Any]:
    """Fit the settings' Pipeline on its data, compile its bundle into ``directory`` with the
    production steps; the bundle, its sha256, the fitted Pipeline and the Dataset."""
    from petalops.data.load import load_dataset
    from petalops.pipeline.compile import compile_candidate
    from petalops.pipeline.fit import fit
    from petalops.pipeline.profile import training_profile
    from petalops.pipeline.split import split

    dataset = load_dataset(settings.data, path)
    rows = split(settings, dataset)
    pipeline = fit(settings, rows)
    profile = training_profile(settings, dataset, rows, pipeline)
    candidate = compile_candidate(
        directory, pipeline, settings.project, dataset, profile, settings.model.preprocess.unknown
    )
    return directory, candidate.digest, pipeline, dataset
