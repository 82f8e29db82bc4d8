"""The compile step: a fitted Pipeline into a model bundle (ONNX for any classifier, numpy for
linear ones), proven to predict like the Pipeline before anything is registered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from petalops.data.load import Dataset
from petalops.errors import ConfigError, IntegrityError
from petalops.runtime.bundle import Manifest, sha256_file, write_manifest
from petalops.runtime.model import ModelRuntime, open_bundle

ONNX_OPSET = 17


@dataclass(frozen=True)
class Candidate:
    """A compiled bundle on disk and the runtime that serves it (what the gate checks)."""

    bundle: Path
    digest: str
    runtime: ModelRuntime


def compile_candidate(
    directory: Path, pipeline: Pipeline, name: str, dataset: Dataset, profile: dict[str, Any]
) -> Candidate:
    """Write the bundle of ``pipeline`` into ``directory`` and open it as the candidate."""
    digest = write_bundle(
        directory, pipeline, name, dataset.features, dataset.classes, profile, dataset.x
    )
    return Candidate(directory, digest, open_bundle(directory, name, "candidate", digest))


def linear_params(pipeline: Pipeline) -> dict[str, Any] | None:
    """Weights and bias of ``[StandardScaler] + LogisticRegression`` with the scaler folded in."""
    steps = [step for _, step in pipeline.steps]
    clf = steps[-1]
    if not isinstance(clf, LogisticRegression):
        return None
    scalers = steps[:-1]
    if len(scalers) > 1 or (scalers and not isinstance(scalers[0], StandardScaler)):
        return None
    coef = np.asarray(clf.coef_, dtype=np.float64)
    bias = np.asarray(clf.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # binary: softmax over [0, z] equals the logistic sigmoid
        coef = np.vstack([np.zeros_like(coef), coef])
        bias = np.concatenate([[0.0], bias])
    weights = coef.T  # (n_features, n_classes)
    if scalers:
        scaler = scalers[0]
        mean = np.asarray(scaler.mean_ if scaler.with_mean else 0.0)
        scale = np.asarray(scaler.scale_ if scaler.with_std else 1.0)
        weights = weights / np.broadcast_to(scale, (weights.shape[0],))[:, None]
        bias = bias - np.broadcast_to(mean, (weights.shape[0],)) @ weights
    return {"weights": weights.tolist(), "bias": bias.tolist()}


def to_onnx_bytes(pipeline: Pipeline, n_features: int) -> tuple[bytes, str]:
    last_error: Exception | None = None
    for tensor_type, dtype in ((DoubleTensorType, "float64"), (FloatTensorType, "float32")):
        try:
            model = to_onnx(
                pipeline,
                initial_types=[("input", tensor_type([None, n_features]))],
                options={"zipmap": False},
                target_opset=ONNX_OPSET,
            )
            # skl2onnx lists opsets in set order; sorted, the same model gives the same bytes.
            opsets = sorted((o.domain, o.version) for o in model.opset_import)
            del model.opset_import[:]
            for domain, version in opsets:
                entry = model.opset_import.add()
                entry.domain, entry.version = domain, version
            data = model.SerializeToString()
            # Some operators convert in float64 but have no float64 kernel in ONNX Runtime
            # (trees): prove the session loads, else fall back to float32.
            ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            return data, dtype
        except Exception as exc:  # skl2onnx raises many types for unsupported operators
            last_error = exc
    raise ConfigError(
        f"{type(pipeline.steps[-1][1]).__name__} cannot be compiled to ONNX ({last_error}); "
        "choose a classifier skl2onnx supports"
    )


def write_bundle(
    directory: Path,
    pipeline: Pipeline,
    name: str,
    features: list[str],
    classes: list[str],
    profile: dict[str, Any],
    check_x: npt.NDArray[np.float64],
) -> str:
    """Write the bundle, prove it predicts like the Pipeline, and return its sha256."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx_bytes, dtype = to_onnx_bytes(pipeline, len(features))
    (directory / "model.onnx").write_bytes(onnx_bytes)
    (directory / "profile.json").write_text(json.dumps(profile), encoding="utf-8")
    files = ["model.onnx", "profile.json"]
    linear = linear_params(pipeline)
    if linear is not None:
        (directory / "linear.json").write_text(json.dumps(linear), encoding="utf-8")
        files.append("linear.json")
    stats = profile["features"]
    manifest = Manifest(
        name=name,
        features=features,
        classes=classes,
        kind="linear" if linear is not None else "onnx",
        files={f: sha256_file(directory / f) for f in files},
        input_dtype=dtype,
        feature_min=[stats[f]["min"] for f in features],
        feature_max=[stats[f]["max"] for f in features],
    )
    digest = write_manifest(directory, manifest)
    expected = pipeline.predict(pd.DataFrame(check_x, columns=features))
    for prefer in ("auto", "onnx"):
        runtime: ModelRuntime = open_bundle(directory, name, "check", digest, prefer=prefer)
        got = runtime.predict(check_x)
        mismatches = int((got != expected).sum())
        # float32 ONNX may flip a row sitting exactly on a class boundary; more is a bug.
        if mismatches > max(0, len(expected) // 1000):
            raise IntegrityError(
                f"compiled model ({type(runtime).__name__}) disagrees with scikit-learn on "
                f"{mismatches} of {len(expected)} rows; refusing to register it"
            )
    return digest
