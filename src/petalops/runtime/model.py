"""The compiled predict path shared by `petalops predict` and the server.

scikit-learn spends ~100 µs validating every call; here a linear model is two numpy
operations on its own coefficients and any other classifier runs in ONNX Runtime.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from petalops.errors import InputError
from petalops.runtime.bundle import Manifest, verify_bundle

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class ModelRuntime:
    """A loaded, verified model: ``predict_proba`` on an ``(n, n_features)`` float array."""

    def __init__(self, manifest: Manifest, name: str, version: str) -> None:
        self.manifest = manifest
        self.name = name
        self.version = version
        self.features = manifest.features
        self.classes = manifest.classes
        self.n_features = len(manifest.features)
        self.feature_min = np.asarray(manifest.feature_min or [-np.inf] * self.n_features)
        self.feature_max = np.asarray(manifest.feature_max or [np.inf] * self.n_features)

    def predict_proba(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError

    def predict(self, x: FloatArray) -> IntArray:
        return np.asarray(self.predict_proba(x).argmax(axis=1), dtype=np.int64)

    def predict_one(self, row: list[float]) -> tuple[int, list[float]]:
        """One row as plain Python lists; the server's hot path."""
        proba = self.predict_proba(np.asarray([row], dtype=np.float64))[0]
        return int(proba.argmax()), proba.tolist()

    def out_of_range(self, x: FloatArray) -> int:
        """How many values lie outside the range seen in training."""
        return int(((x < self.feature_min) | (x > self.feature_max)).sum())

    def check_shape(self, x: FloatArray) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(
                f"expected rows of {self.n_features} numbers ({', '.join(self.features)}), "
                f"got shape {list(x.shape)}"
            )


class LinearRuntime(ModelRuntime):
    """softmax(x @ W + b): exact for LogisticRegression (binary models carry a zero column)."""

    def __init__(self, manifest: Manifest, name: str, version: str, params: dict[str, Any]):
        super().__init__(manifest, name, version)
        self.weights = np.asarray(params["weights"], dtype=np.float64)
        self.bias = np.asarray(params["bias"], dtype=np.float64)
        # Plain-list copies: for one row, Python arithmetic beats numpy's per-call overhead.
        self._w_rows = self.weights.T.tolist()
        self._b = self.bias.tolist()

    def predict_proba(self, x: FloatArray) -> FloatArray:
        z = x @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, x: FloatArray) -> IntArray:
        return np.asarray((x @ self.weights + self.bias).argmax(axis=1), dtype=np.int64)

    def predict_one(self, row: list[float]) -> tuple[int, list[float]]:
        if len(row) != self.n_features:
            raise InputError(f"expected {self.n_features} features, got {len(row)}")
        scores = []
        for w_row, b in zip(self._w_rows, self._b, strict=True):
            score = b
            for w, v in zip(w_row, row, strict=True):
                score += w * v
            scores.append(score)
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        proba = [e / total for e in exps]
        return scores.index(top), proba


class OnnxRuntime(ModelRuntime):
    """Any scikit-learn classifier compiled by skl2onnx, run by ONNX Runtime."""

    def __init__(self, manifest: Manifest, name: str, version: str, model_path: Path):
        super().__init__(manifest, name, version)
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread per session: the server runs one session per worker process, and
        # intra-op threads only add wake-up latency for the small batches it sees.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._dtype = np.float32 if manifest.input_dtype == "float32" else np.float64

    def predict_proba(self, x: FloatArray) -> FloatArray:
        _, proba = self._session.run(None, {self._input: np.ascontiguousarray(x, self._dtype)})
        return np.asarray(proba, dtype=np.float64)


def open_bundle(
    directory: Path, name: str, version: str, expected_sha256: str | None, prefer: str = "auto"
) -> ModelRuntime:
    """Verify a bundle directory and return the fastest runtime it supports."""
    manifest = verify_bundle(directory, expected_sha256)
    linear = directory / "linear.json"
    if prefer != "onnx" and manifest.kind == "linear" and linear.is_file():
        params = json.loads(linear.read_text(encoding="utf-8"))
        return LinearRuntime(manifest, name, version, params)
    return OnnxRuntime(manifest, name, version, directory / "model.onnx")
