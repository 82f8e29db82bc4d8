"""The compiled predict path shared by `petalops predict` and the server.

scikit-learn spends ~100 µs validating every call; here a linear model is two numpy
operations on its own coefficients and any other classifier runs in ONNX Runtime.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from operator import mul
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from petalops.data.schema import Schema, is_missing
from petalops.errors import InputError
from petalops.runtime.bundle import Manifest, verify_bundle

# A missing category as the ONNX model's string input carries it (see pipeline.compile).
MISSING_TEXT = ""

FloatArray = npt.NDArray[Any]
IntArray = npt.NDArray[np.int64]


class Probabilities(np.ndarray[Any, np.dtype[np.float64]]):
    """Class probabilities ``(n, n_classes)`` that carry the class the model itself gave each
    row (``labels``), which `ModelRuntime.decide` returns.

    For some classifiers the two are not the same: ``SVC(probability=True).predict`` follows
    the decision function while its probabilities are Platt's, and scikit-learn documents
    that they can disagree. Callers (the server, batch scoring) ask for the probabilities and
    then `decide`; the labels travel with the array so every path serves the estimator's own
    ``predict``. A view or slice of it carries none (``decide`` then takes the argmax)."""

    labels: IntArray | None = None


def with_labels(proba: FloatArray, labels: Any) -> Probabilities:
    """``proba`` as `Probabilities` carrying ``labels``."""
    out = np.asarray(proba, dtype=np.float64).view(Probabilities)
    out.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    return out


class ModelRuntime:
    """A loaded, verified model: ``predict_proba`` on an ``(n, n_features)`` array of
    canonical values (`petalops.data.schema`): float64 for a numeric-only model, else object
    (floats, strings for categorical features, NaN or None where missing)."""

    def __init__(self, manifest: Manifest, name: str, version: str) -> None:
        self.manifest = manifest
        self.name = name
        self.version = version
        # The process that opened it: a worker forked from `petalops serve` serves the
        # runtime its parent opened (serving/preload.py).
        self.opened_in = os.getpid()
        self.features = manifest.features
        self.classes = manifest.classes
        self.n_features = len(manifest.features)
        self.schema = (
            Schema.from_json(manifest.schema)
            if manifest.schema
            else Schema.numeric(manifest.features)  # a bundle from before schemas: numbers only
        )
        self.unknown = manifest.unknown
        self.mixed = not self.schema.numeric_only
        # Column index -> the categories training saw (the others are "unseen").
        self.categories = {
            j: c.known for j, c in enumerate(self.schema.columns) if c.kind == "categorical"
        }
        # The same, as arrays np.isin takes.
        self._known = {j: np.asarray(sorted(k), dtype=object) for j, k in self.categories.items()}
        self.numeric_columns = [
            j for j, c in enumerate(self.schema.columns) if c.kind != "categorical"
        ]
        low = manifest.feature_min or [None] * self.n_features
        high = manifest.feature_max or [None] * self.n_features
        self.feature_min = np.asarray([-np.inf if v is None else v for v in low], dtype=float)
        self.feature_max = np.asarray([np.inf if v is None else v for v in high], dtype=float)

    def predict_proba(self, x: FloatArray) -> FloatArray:
        raise NotImplementedError

    def predict(self, x: FloatArray) -> IntArray:
        return self.decide(self.predict_proba(x))

    def decide(self, proba: FloatArray) -> IntArray:
        """The class of each row of probabilities: the model's own (`Probabilities.labels`)
        when `predict_proba` attached it, else the most probable."""
        labels = getattr(proba, "labels", None)
        if labels is not None:
            return np.asarray(labels, dtype=np.int64)
        return np.asarray(proba.argmax(axis=1), dtype=np.int64)

    def predict_one(self, row: list[Any]) -> tuple[int, list[float]]:
        """One row as plain Python lists; the server's hot path."""
        dtype = object if self.mixed else np.float64
        proba = self.predict_proba(np.asarray([row], dtype=dtype))[0]
        return int(proba.argmax()), proba.tolist()

    def probe_row(self) -> list[Any]:
        """A valid row for warm-up: mid-range numbers, each feature's most frequent category."""
        row: list[Any] = []
        for j, column in enumerate(self.schema.columns):
            if column.kind == "categorical":
                row.append(next(iter(column.categories), ""))
                continue
            lo, hi = self.feature_min[j], self.feature_max[j]
            row.append(float((lo + hi) / 2.0) if np.isfinite(lo) and np.isfinite(hi) else 0.0)
        return row

    def probe_rows(self, n: int) -> FloatArray:
        """``n`` copies of `probe_row` as the array `predict_proba` takes."""
        return np.asarray([self.probe_row()] * n, dtype=object if self.mixed else np.float64)

    def out_of_range(self, x: FloatArray) -> int:
        """How many numeric values lie outside the range seen in training."""
        if self.mixed:
            cols = self.numeric_columns
            values = np.asarray(x[:, cols], dtype=np.float64)
            return int(
                ((values < self.feature_min[cols]) | (values > self.feature_max[cols])).sum()
            )
        return int(((x < self.feature_min) | (x > self.feature_max)).sum())

    def unseen(self, x: npt.NDArray[Any]) -> dict[str, int]:
        """Per categorical feature, how many values are categories training never saw."""
        counts: dict[str, int] = {}
        for j, known in self.categories.items():
            n = sum(1 for v in x[:, j] if not is_missing(v) and v not in known)
            if n:
                counts[self.features[j]] = n
        return counts

    def check_unseen(self, x: npt.NDArray[Any]) -> dict[str, int]:
        """`unseen`, and an InputError naming the column and the fix when the policy
        (model.preprocess.unknown) is ``error``."""
        counts = self.unseen(x) if self.categories else {}
        if counts and self.unknown == "error":
            name = next(iter(counts))
            j = self.features.index(name)
            value = next(v for v in x[:, j] if not is_missing(v) and v not in self.categories[j])
            known = sorted(self.categories[j])
            shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
            raise InputError(
                f"feature {name!r} has the category {value!r}, never seen in training; use one "
                f"of {shown} (or retrain with model.preprocess.unknown=ignore or infrequent)"
            )
        return counts

    def unseen_rows(self, rows: Sequence[Sequence[Any]]) -> dict[str, int]:
        """`unseen` of a few rows as plain lists of canonical values (a request's), without
        building an array: what the server counts for every mixed-type request. Refusing
        them under ``unknown: error`` is `check_unseen`'s (the caller's, once counted)."""
        counts: dict[str, int] = {}
        for j, known in self.categories.items():
            n = 0
            for row in rows:
                v = row[j]
                if v is not None and v not in known and v == v and v != MISSING_TEXT:
                    n += 1
            if n:
                counts[self.features[j]] = n
        return counts

    def unseen_columns(self, columns: Sequence[npt.NDArray[Any]]) -> dict[str, int]:
        """`unseen` of the feature columns `predict_proba_columns` takes (vectorised)."""
        counts: dict[str, int] = {}
        for j, known in self._known.items():
            values = columns[j]
            n = int((~np.isin(values, known) & (values != MISSING_TEXT)).sum())
            if n:
                counts[self.features[j]] = n
        return counts

    def check_unseen_columns(self, columns: Sequence[npt.NDArray[Any]]) -> dict[str, int]:
        """`check_unseen` of the feature columns `predict_proba_columns` takes."""
        counts = self.unseen_columns(columns) if self.categories else {}
        if counts and self.unknown == "error":
            # The same message as for rows, from the (few) rows that hold the category.
            j = self.features.index(next(iter(counts)))
            values = columns[j]
            rows = np.flatnonzero(~np.isin(values, self._known[j]) & (values != MISSING_TEXT))
            x = np.empty((len(rows), self.n_features), dtype=object)
            for k, column in enumerate(columns):
                x[:, k] = column[rows]
            self.check_unseen(x)
        return counts

    def predict_proba_columns(self, columns: Sequence[npt.NDArray[Any]]) -> FloatArray:
        """`predict_proba` of one array per feature, in canonical form: float64 (NaN where
        missing) for numeric and boolean features, strings (``""`` where missing) for
        categorical ones. What batch scoring builds with Arrow, without an object matrix."""
        x = np.empty((len(columns[0]), self.n_features), dtype=object if self.mixed else float)
        for j, column in enumerate(columns):
            x[:, j] = column
        return self.predict_proba(x)

    def check_shape(self, x: FloatArray) -> None:
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(
                f"expected rows of {self.n_features} values ({', '.join(self.features)}), "
                f"got shape {list(x.shape)}"
            )


class LinearRuntime(ModelRuntime):
    """softmax(x @ W + b): exact for LogisticRegression (binary models carry a zero column)."""

    def __init__(self, manifest: Manifest, name: str, version: str, params: dict[str, Any]):
        super().__init__(manifest, name, version)
        self.weights = np.asarray(params["weights"], dtype=np.float64)
        self.bias = np.asarray(params["bias"], dtype=np.float64)
        # The imputer's value per feature, for a missing (NaN) one.
        fill = params.get("fill")
        self.fill = None if fill is None else np.asarray(fill, dtype=np.float64)
        self._fill = None if fill is None else [float(v) for v in fill]
        # Plain-list copies: for one row, Python arithmetic beats numpy's per-call overhead.
        self._w_rows = self.weights.T.tolist()
        self._b = self.bias.tolist()

    def _impute(self, x: FloatArray) -> FloatArray:
        if self.fill is not None:
            missing = np.isnan(x)
            if missing.any():
                x = np.where(missing, self.fill, x)
        return x

    def predict_proba(self, x: FloatArray) -> FloatArray:
        z = self._impute(x) @ self.weights + self.bias
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, x: FloatArray) -> IntArray:
        # Class-major scores, one contiguous row per class, whose first maximum per column
        # takes k - 1 vectorised comparisons: argmax(axis=1) over rows of 3 scores walks
        # them one inner loop at a time (~3x slower over a batch scoring chunk). A
        # feature-major x (`petalops.batch` passes one, transposed) is multiplied in place.
        features = np.asarray(self._impute(x), dtype=np.float64)  # no copy of a float64 view
        scores = self.weights.T @ features.T
        scores += self.bias[:, None]
        return first_max(scores)

    def predict_one(self, row: list[float]) -> tuple[int, list[float]]:
        if len(row) != self.n_features:
            raise InputError(f"expected {self.n_features} features, got {len(row)}")
        # Plain zip: the lengths are checked above and fixed at load, and zip's strict=True
        # keyword costs more than the four multiplications (keyword parsing per call).
        if self._fill is not None:
            # v != v is NaN; None is a missing value too
            row = [f if v is None or v != v else v for v, f in zip(row, self._fill)]  # noqa: B905
        # sum(map(mul)) adds in the same order as a loop from the bias (the same floats),
        # in C: 2.4 µs a row instead of 3.0 for Iris.
        scores = [sum(map(mul, w_row, row), b) for w_row, b in zip(self._w_rows, self._b)]  # noqa: B905
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        proba = [e / total for e in exps]
        return scores.index(top), proba


def first_max(scores: FloatArray) -> IntArray:
    """``scores.argmax(axis=0)`` for a few rows of many columns (class-major scores): the
    first row holding each column's maximum, as argmax breaks ties; a NaN (argmax takes the
    first one as the maximum) is left to argmax itself."""
    best = scores[0].copy()
    index = np.zeros(scores.shape[1], dtype=np.int64)
    for k in range(1, scores.shape[0]):
        row = scores[k]
        index[row > best] = k  # a boolean-mask store: 2x np.copyto(..., where=) here
        np.maximum(best, row, out=best)
    if np.isnan(best).any():
        return np.asarray(scores.argmax(axis=0), dtype=np.int64)
    return index


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
        self._label_name = self._session.get_outputs()[0].name
        self._dtype = np.float32 if manifest.input_dtype == "float32" else np.float64
        # Tree ensembles sum their leaves in float32 even for float64 inputs: scikit-learn's
        # exact ties (two classes at 0.5) come out a few 1e-8 apart. Rounded past float32's
        # noise, argmax breaks the tie the way scikit-learn does (first class).
        self._round = self._session.get_outputs()[1].type == "tensor(float)"
        # The graph's label output is the class served (the estimator's own predict);
        # a bundle from before that serves the most probable class.
        self._labels = manifest.decision == "label"
        self._names = [c.name for c in self.schema.columns]
        self._categorical = [c.kind == "categorical" for c in self.schema.columns]

    def _feeds(self, x: npt.NDArray[Any]) -> dict[str, Any]:
        if not self.mixed:
            return {self._input: np.ascontiguousarray(x, self._dtype)}
        feeds: dict[str, Any] = {}
        for j, column in enumerate(self.schema.columns):
            values = x[:, j]
            if column.kind == "categorical":
                text = [MISSING_TEXT if is_missing(v) else str(v) for v in values]
                feeds[column.name] = np.asarray(text, dtype=object).reshape(-1, 1)
            else:
                feeds[column.name] = np.asarray(
                    [np.nan if v is None else v for v in values], dtype=self._dtype
                ).reshape(-1, 1)
        return feeds

    def _answer(self, outputs: list[Any]) -> FloatArray:
        label, proba = outputs
        if self._labels:
            return with_labels(proba, label)
        return np.asarray(proba, dtype=np.float64)

    def predict_proba(self, x: FloatArray) -> FloatArray:
        return self._answer(self._session.run(None, self._feeds(x)))

    def predict(self, x: FloatArray) -> IntArray:
        if self._labels:
            label = self._session.run([self._label_name], self._feeds(x))[0]
            return np.asarray(label, dtype=np.int64).reshape(-1)
        return self.decide(self.predict_proba(x))

    def predict_proba_columns(self, columns: Sequence[npt.NDArray[Any]]) -> FloatArray:
        if not self.mixed:
            return super().predict_proba_columns(columns)
        feeds: dict[str, Any] = {}
        for column, values in zip(self.schema.columns, columns, strict=True):
            if column.kind == "categorical":
                feeds[column.name] = values.reshape(-1, 1)
            else:
                feeds[column.name] = values.astype(self._dtype, copy=False).reshape(-1, 1)
        return self._answer(self._session.run(None, feeds))

    def decide(self, proba: FloatArray) -> IntArray:
        if self._round and getattr(proba, "labels", None) is None:
            proba = np.round(proba, 5)
        return super().decide(proba)

    def predict_one(self, row: list[Any]) -> tuple[int, list[float]]:
        if self.mixed:
            # One (1, 1) array per input straight from the row: `_feeds` builds an object
            # matrix and walks its columns, which costs as much as the model itself here.
            feeds = {
                name: (
                    np.array([[MISSING_TEXT if v is None or v != v else str(v)]], dtype=object)
                    if categorical
                    else np.array([[math.nan if v is None else v]], dtype=self._dtype)
                )
                for name, categorical, v in zip(self._names, self._categorical, row, strict=True)
            }
        else:
            feeds = {self._input: np.asarray([row], dtype=self._dtype)}
        label, proba = self._session.run(None, feeds)
        if self._labels:
            return int(label[0]), np.asarray(proba[0], dtype=np.float64).tolist()
        one = np.asarray(proba[0], dtype=np.float64)
        scores = np.round(one, 5) if self._round else one
        return int(scores.argmax()), one.tolist()


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
