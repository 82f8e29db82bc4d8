"""The track step: everything a training run records in MLflow (params, metrics, tags, the
dataset, the JSON and PNG artifacts, the bundle and, for a model that will be registered, the
scikit-learn flavour), so that any run can be inspected and reproduced.

The files are written before the run starts: a failure there logs nothing.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import onnx
import onnxruntime
import pandas as pd
import skl2onnx
import sklearn
from sklearn.pipeline import Pipeline

import petalops
from petalops.config import IRIS_SOURCE, Settings
from petalops.data.load import Dataset
from petalops.pipeline.evaluate import Scores
from petalops.pipeline.gate import GateResult
from petalops.pipeline.load import TrainingData
from petalops.pipeline.picture import Drawing
from petalops.pipeline.split import Split
from petalops.registry import store

# The order they are logged in.
ARTIFACTS = (
    "metrics.json",
    "config.json",
    "gate.json",
    "fitted.json",
    "data.json",
    "confusion_matrix.json",
    "confusion_matrix.png",
)


def library_versions() -> dict[str, str]:
    """The versions of everything that can change a fitted model or its bundle."""
    return {
        "python": platform.python_version(),
        "petalops": petalops.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "mlflow": mlflow.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "skl2onnx": skl2onnx.__version__,
    }


def git_commit(cwd: Path | None = None) -> str | None:
    """The commit checked out in ``cwd`` (``None`` outside a git work tree)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=cwd
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def git_remote(cwd: Path | None = None) -> str | None:
    """The ``origin`` remote's URL of the git work tree at ``cwd`` (``None`` without one)."""
    try:
        out = subprocess.run(
            ["git", "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=cwd,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def source_tags(cwd: Path | None = None) -> dict[str, str]:
    """MLflow's own source tags (its UI links the commit from them) for the work tree at
    ``cwd``: set here because MLflow's automatic git context looks at the entry-point script,
    which for `petalops train` is the console script inside the virtualenv, not the project."""
    commit = git_commit(cwd)
    if not commit:
        return {}
    tags = {"mlflow.source.git.commit": commit, "petalops.git_commit": commit}
    remote = git_remote(cwd)
    if remote:
        tags["mlflow.source.git.repoURL"] = remote
        tags["mlflow.source.name"] = remote
    return tags


def next_run_name(settings: Settings, dataset: Dataset) -> str:
    """``train-<data>-<n>``: the data's name and the next free number among such runs."""
    stem = "iris" if dataset.source.startswith(IRIS_SOURCE) else Path(dataset.source).stem
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "data"
    prefix = f"train-{name}-"
    taken = [
        run.tags.get("mlflow.runName", "")
        for run in store.find_runs(
            settings, f"tags.`mlflow.runName` LIKE '{prefix}%'", max_results=1000
        )
    ]
    numbers = [int(t.removeprefix(prefix)) for t in taken if t.removeprefix(prefix).isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1}"


def run_params(settings: Settings, dataset: Dataset) -> dict[str, Any]:
    """The run's params: the model, the split, the seed and where the data came from."""
    return {
        "model.class": settings.model.class_path,
        "model.scale": settings.model.scale,
        **{f"model.params.{k}": v for k, v in settings.model.params.items()},
        "split.test_size": settings.split.test_size,
        "split.stratify": settings.split.stratify,
        "seed": settings.seed,
        "data.source": dataset.source,
        "data.features": ",".join(dataset.features),
        "data.target": dataset.target,
        "data.rows": dataset.fingerprint.rows,
    }


def run_tags(data: TrainingData, gate: GateResult) -> dict[str, str]:
    """The run's tags: its train key and data hash, the gate verdict, libraries and commit."""
    tags = {
        "petalops.train_key": data.key,
        "petalops.data_sha256": data.sha256,
        "petalops.gate": "passed" if gate.passed else "failed",
        **{f"petalops.lib.{k}": v for k, v in library_versions().items()},
    }
    return {**tags, **source_tags()}


def write_artifacts(
    workdir: Path,
    data: TrainingData,
    scores: Scores,
    gate: GateResult,
    fitted: dict[str, Any],
) -> Drawing:
    """Write every file of ``ARTIFACTS`` into ``workdir``: the picture is being drawn when
    this returns, and is there once `Drawing.wait` has returned."""
    dataset = data.dataset
    files = {
        "metrics.json": json.dumps(scores.metrics, indent=2),
        "config.json": json.dumps(data.config, indent=2),
        "gate.json": json.dumps(gate.to_json(), indent=2),
        "fitted.json": json.dumps(fitted),
        "data.json": json.dumps(
            {"source": dataset.source, **dataset.fingerprint.to_json()}, indent=2
        ),
        "confusion_matrix.json": json.dumps(scores.confusion),
    }
    for name, text in files.items():
        (workdir / name).write_text(text, encoding="utf-8")
    return Drawing(scores.confusion, dataset.classes, workdir / "confusion_matrix.png")


@contextmanager
def tracked_run(
    settings: Settings,
    data: TrainingData,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    run_name: str | None = None,
) -> Iterator[str]:
    """Start the run and log its params, metrics, tags and dataset; yields the run id."""
    dataset = data.dataset
    name = run_name or next_run_name(settings, dataset)
    with store.tracked_run(settings, run_name=name) as run_id:
        store.log_run_data(params, metrics, tags)
        store.log_dataset(
            dataset.frame, dataset.source_path, settings.project, dataset.target, data.sha256
        )
        yield run_id


def log_artifacts(workdir: Path, bundle: Path, drawing: Drawing | None = None) -> None:
    """Inside the active run: the files of ``ARTIFACTS`` and the bundle under ``petalops/``
    (``drawing``, from `write_artifacts`, waited for first)."""
    if drawing is not None:
        drawing.wait()
    for name in ARTIFACTS:
        store.log_artifact(workdir / name)
    store.log_artifacts(bundle, "petalops")


def log_model(pipeline: Pipeline, split: Split, features: list[str]) -> str:
    """Inside the active run: the scikit-learn flavour with an input example; its model URI."""
    example = split.frame(split.x_test).head(3)
    return store.log_sklearn_model(pipeline, example, pipeline.predict(example))
