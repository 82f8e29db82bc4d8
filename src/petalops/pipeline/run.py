"""`train`: validate → split → fit → evaluate → compile → gate → track → register.

Data and configuration errors are raised before anything is logged; a failed gate logs the
run (so it can be inspected) but registers nothing.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import petalops
from petalops.config import Settings
from petalops.data.load import Dataset, load_dataset
from petalops.errors import GateFailedError, PetalopsError
from petalops.pipeline.gate import GateResult, run_gate

STEPS = ("load", "split", "fit", "evaluate", "compile", "gate", "track", "register")
StepCallback = Callable[[str], None]


@dataclass
class TrainResult:
    metrics: dict[str, float]
    gate: GateResult
    run_id: str = ""
    version: str | None = None
    alias: str | None = None
    skipped: bool = False
    train_key: str = ""
    data_sha256: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    fitted: dict[str, Any] = field(default_factory=dict)
    exported: list[str] = field(default_factory=list)


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
    blob = json.dumps(
        {"config": {**config, "data": {**config["data"], "source": None}}, "data": data_sha256},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def library_versions() -> dict[str, str]:
    import mlflow
    import onnx
    import onnxruntime
    import pandas
    import skl2onnx
    import sklearn

    return {
        "python": platform.python_version(),
        "petalops": petalops.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
        "mlflow": mlflow.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "skl2onnx": skl2onnx.__version__,
    }


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=cwd
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def fitted_parameters(pipeline: Any) -> dict[str, Any]:
    """Learned arrays of every step (coef_, intercept_, mean_, …) as nested lists."""
    fitted: dict[str, Any] = {}
    for step_name, step in pipeline.steps:
        for attr, value in vars(step).items():
            if attr.endswith("_") and not attr.startswith("_"):
                if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
                    fitted[f"{step_name}.{attr}"] = value.tolist()
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    fitted[f"{step_name}.{attr}"] = value
    return fitted


def _champion_accuracy(
    settings: Settings, dataset: Dataset, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[float | None, str | None]:
    """Accuracy of the current champion on this run's test split (its recorded metric if the
    schema changed)."""
    from petalops.registry import load_runtime
    from petalops.registry.store import alias_version, get_run, get_version

    version = alias_version(settings, "champion")
    if version is None:
        return None, None
    try:
        runtime = load_runtime(settings, f"{settings.project}/{version}")
        if runtime.features == dataset.features and runtime.classes == dataset.classes:
            return float((runtime.predict(x_test) == y_test).mean()), version
    except PetalopsError:
        pass
    info = get_version(settings, version)
    recorded = get_run(settings, info.run_id).metrics.get("accuracy")
    return recorded, version


def _find_existing(settings: Settings, key: str) -> tuple[str, str] | None:
    from petalops.registry.store import list_versions

    for info in list_versions(settings):
        if info.tags.get("petalops.train_key") == key:
            return info.version, info.run_id
    return None


def train(
    settings: Settings,
    data_path: str | Path | None = None,
    *,
    register: bool = True,
    export_dir: Path | None = None,
    skip_if_unchanged: bool = False,
    on_step: StepCallback | None = None,
    run_name: str | None = None,
) -> TrainResult:
    """Train, evaluate, gate and (unless told not to) register a model version."""
    step = on_step or (lambda _name: None)
    step("load")
    dataset = load_dataset(settings.data, data_path)
    config = training_config(settings)
    key = train_key(config, dataset.fingerprint.sha256)

    if skip_if_unchanged and register:
        existing = _find_existing(settings, key)
        if existing is not None:
            from petalops.registry.store import get_run

            record = get_run(settings, existing[1])
            return TrainResult(
                metrics=record.metrics,
                gate=GateResult([]),
                run_id=existing[1],
                version=existing[0],
                skipped=True,
                train_key=key,
                data_sha256=dataset.fingerprint.sha256,
            )

    import pandas as pd
    from sklearn.model_selection import train_test_split

    from petalops.pipeline.build import build_pipeline
    from petalops.pipeline.compile import write_bundle
    from petalops.pipeline.evaluate import classification_metrics, confusion, plot_confusion
    from petalops.pipeline.profile import build_profile
    from petalops.runtime.model import open_bundle

    step("split")
    idx = np.arange(len(dataset.y))
    train_idx, test_idx = train_test_split(
        idx,
        test_size=settings.split.test_size,
        random_state=settings.seed,
        stratify=dataset.y if settings.split.stratify else None,
    )
    x_train, y_train = dataset.x[train_idx], dataset.y[train_idx]
    x_test, y_test = dataset.x[test_idx], dataset.y[test_idx]

    step("fit")
    pipeline = build_pipeline(settings.model, settings.seed)
    frame_train = pd.DataFrame(x_train, columns=dataset.features)
    from threadpoolctl import threadpool_limits

    try:
        # Iris-sized fits lose to BLAS thread wake-ups: one thread is ~17x faster on a busy
        # 2-core box, and the fitted parameters are bit-identical.
        with threadpool_limits(limits=1):
            pipeline.fit(frame_train, y_train)
    except (ValueError, TypeError) as exc:
        raise PetalopsError(
            f"model.params {settings.model.params} rejected by {settings.model.class_path}: "
            f"{str(exc).splitlines()[0]}"
        ) from None

    step("evaluate")
    frame_test = pd.DataFrame(x_test, columns=dataset.features)
    proba = pipeline.predict_proba(frame_test)
    y_pred = np.asarray(proba.argmax(axis=1), dtype=np.int64)
    metrics = classification_metrics(y_test, y_pred, proba, dataset.classes)
    matrix = confusion(y_test, y_pred, len(dataset.classes))

    workdir = Path(tempfile.mkdtemp(prefix="petalops-train-"))
    try:
        step("compile")
        profile = build_profile(
            x_train,
            y_train,
            dataset.features,
            dataset.classes,
            predicted=np.asarray(pipeline.predict(frame_train), dtype=np.int64),
            seed=settings.seed,
        )
        bundle = workdir / "petalops"
        digest = write_bundle(
            bundle,
            pipeline,
            settings.project,
            dataset.features,
            dataset.classes,
            profile,
            dataset.x,
        )
        runtime = open_bundle(bundle, settings.project, "candidate", digest)

        step("gate")
        champion_acc, champion_version = (
            _champion_accuracy(settings, dataset, x_test, y_test) if register else (None, None)
        )
        gate = run_gate(
            runtime, metrics, x_test, settings.gate, champion_acc, champion_version, settings.seed
        )

        step("track")
        from petalops.registry import store

        fitted = fitted_parameters(pipeline)
        params: dict[str, Any] = {
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
        versions = library_versions()
        tags = {
            "petalops.train_key": key,
            "petalops.data_sha256": dataset.fingerprint.sha256,
            "petalops.gate": "passed" if gate.passed else "failed",
            **{f"petalops.lib.{k}": v for k, v in versions.items()},
        }
        commit = git_commit()
        if commit:
            tags["petalops.git_commit"] = commit
        (workdir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
        (workdir / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (workdir / "gate.json").write_text(json.dumps(gate.to_json(), indent=2), encoding="utf-8")
        (workdir / "fitted.json").write_text(json.dumps(fitted), encoding="utf-8")
        (workdir / "data.json").write_text(
            json.dumps({"source": dataset.source, **dataset.fingerprint.to_json()}, indent=2),
            encoding="utf-8",
        )
        (workdir / "confusion_matrix.json").write_text(json.dumps(matrix), encoding="utf-8")
        plot_confusion(matrix, dataset.classes, workdir / "confusion_matrix.png")

        with store.tracked_run(settings, run_name=run_name) as run_id:
            store.log_run_data(params, metrics, tags)
            store.log_dataset(
                dataset.frame,
                dataset.source_path,
                settings.project,
                dataset.target,
                dataset.fingerprint.sha256,
            )
            from petalops.experiments.snapshot import record_snapshot

            record_snapshot(settings, dataset, run_id)  # the exact data, by content hash
            for name in (
                "metrics.json",
                "config.json",
                "gate.json",
                "fitted.json",
                "data.json",
                "confusion_matrix.json",
                "confusion_matrix.png",
            ):
                store.log_artifact(workdir / name)
            store.log_artifacts(bundle, "petalops")
            model_uri = ""
            if gate.passed and register:
                example = frame_test.head(3)
                model_uri = store.log_sklearn_model(pipeline, example, pipeline.predict(example))

        result = TrainResult(
            metrics=metrics,
            gate=gate,
            run_id=run_id,
            train_key=key,
            data_sha256=dataset.fingerprint.sha256,
            params=params,
            fitted=fitted,
        )
        if export_dir is not None:
            result.exported = _export(export_dir, workdir, bundle, metrics)
        if not gate.passed:
            raise GateFailedError(f"quality gate failed, nothing registered: {gate.reason()}")
        if register:
            step("register")
            result.version = store.register_version(
                settings,
                model_uri,
                run_id,
                digest,
                {
                    "petalops.train_key": key,
                    "petalops.data_sha256": dataset.fingerprint.sha256,
                    "petalops.accuracy": f"{metrics['accuracy']:.6f}",
                    "petalops.gate": "passed",
                },
            )
            result.alias = "challenger" if champion_version else "champion"
            store.set_alias(settings, result.alias, result.version)
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _export(export_dir: Path, workdir: Path, bundle: Path, metrics: dict[str, float]) -> list[str]:
    """Tutorial-style artifacts: metrics.json and the model files in one directory."""
    export_dir.mkdir(parents=True, exist_ok=True)
    written = []
    (export_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    written.append("metrics.json")
    for name in ("confusion_matrix.png", "gate.json", "config.json"):
        shutil.copy2(workdir / name, export_dir / name)
        written.append(name)
    for item in bundle.iterdir():
        shutil.copy2(item, export_dir / item.name)
        written.append(item.name)
    return sorted(written)
