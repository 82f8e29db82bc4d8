"""The profile of a scored batch file, so a batch run can be checked like live traffic:
`petalops predict --input rows.parquet --output preds.parquet --profile rows.profile.json`.

The file holds the layout of the training profile (`petalops.data.profile.build_profile`:
``rows``, ``classes``, per feature ``min``/``max``/``mean``/``std``/``missing``/``quantiles``/
``histogram``/``sample`` or category shares, ``prediction_balance``), so it can stand wherever
a profile does, and beside it ``data_quality`` (the checks of `monitor quality` against the
version's training profile: missing, out of range with the tolerance, unseen categories,
near-constant columns) and ``drift`` (every drift statistic, as `monitor drift`). An
``.html`` path writes the drift report instead.

Built one record batch at a time, so memory stays bounded on any file: counts, min, max,
mean and standard deviation (Chan's parallel update) are exact over every row; quantiles,
histogram, sample, the constant-share of numeric columns and the drift statistics come from a
uniform sample of ``SAMPLE_LIMIT`` rows (each row keeps a random key, the smallest keys stay:
the same sample whatever the batch size).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from petalops.data.profile import SAMPLE_LIMIT, build_profile
from petalops.data.schema import MAX_LISTED_CATEGORIES, boolean_value, category_text, is_missing
from petalops.errors import InputError
from petalops.monitoring.dataquality import (
    DataQualityReport,
    FeatureQuality,
    QualityThresholds,
    judged,
    too_small,
    verdict,
)
from petalops.monitoring.drift import DriftReport, drift_report
from petalops.monitoring.store import Window
from petalops.runtime.model import ModelRuntime

SUFFIXES = (".json", ".html")


def check_profile_file(destination: Path) -> None:
    """``--profile`` must be a .json (or .html) file in a directory that exists."""
    if destination.suffix.lower() not in SUFFIXES:
        raise InputError(f"--profile {destination} must end in .json (or .html for a report)")
    if not destination.parent.is_dir():
        raise InputError(
            f"--profile {destination}: the directory {destination.parent} does not exist; "
            "create it first"
        )


@dataclass
class _Moments:
    """Exact running figures of one numeric column."""

    count: int = 0
    missing: int = 0
    out_of_range: int = 0
    low: float = math.inf
    high: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0  # the sum of squared deviations from the mean

    def add(self, values: npt.NDArray[np.float64], low: float, high: float) -> None:
        nan = np.isnan(values)
        present = values[~nan] if nan.any() else values
        self.missing += len(values) - len(present)
        n = len(present)
        if not n:
            return
        self.out_of_range += int(((present < low) | (present > high)).sum())
        self.low = min(self.low, float(present.min()))
        self.high = max(self.high, float(present.max()))
        mean = float(present.mean())
        m2 = float(((present - mean) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total


def _floats(column: Any) -> npt.NDArray[np.float64]:
    """A numeric Arrow column as float64 with NaN where missing (text columns parsed)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.asarray(
            [math.nan if v is None or v == "" else float(v) for v in column.to_pylist()],
            dtype=np.float64,
        )
    if column.type != pa.float64():
        column = column.cast(pa.float64())
    if column.null_count:  # rare; `fill_null` would import pyarrow.compute and pandas (~1 s)
        return np.asarray(
            [math.nan if v is None else v for v in column.to_pylist()], dtype=np.float64
        )
    # The values buffer itself, not `to_numpy()`: that imports pandas (see petalops.batch).
    return np.frombuffer(
        column.buffers()[1], dtype=np.float64, count=len(column), offset=column.offset * 8
    )


class BatchProfile:
    """Feed it each scored record batch (:meth:`add`); :meth:`document` is the profile."""

    def __init__(
        self,
        runtime: ModelRuntime,
        training: dict[str, Any],
        monitor: Any,
        *,
        source: str = "",
        seed: int = 42,
    ) -> None:
        self.runtime = runtime
        self.training = training
        self.monitor = monitor
        self.thresholds = QualityThresholds.from_settings(monitor)
        self.source = source
        self.seed = seed
        self.rows = 0
        self.names = list(runtime.features)
        self.kinds = [c.kind for c in runtime.schema.columns]
        self.predicted = np.zeros(len(runtime.classes), dtype=np.int64)
        tolerance = self.thresholds.range_tolerance
        self._bounds: dict[int, tuple[float, float]] = {}
        self._moments: dict[int, _Moments] = {}
        self._categories: dict[int, Counter[str]] = {}
        self._missing_categories: dict[int, int] = {}
        for j, (name, kind) in enumerate(zip(self.names, self.kinds, strict=True)):
            if kind == "categorical":
                self._categories[j] = Counter()
                self._missing_categories[j] = 0
                continue
            spec = training["features"].get(name, {})
            low, high = float(spec.get("min", -math.inf)), float(spec.get("max", math.inf))
            slack = (high - low) * tolerance if high > low else 0.0
            self._bounds[j] = (low - slack, high + slack)
            self._moments[j] = _Moments()
        self._rng = np.random.default_rng(seed)
        dtype: Any = np.float64 if runtime.schema.numeric_only else object
        self._keys = np.empty(0)
        self._sample = np.empty((0, len(self.names)), dtype=dtype)
        self._sample_predictions = np.empty(0, dtype=np.int64)

    def _matrix(self, batch: Any) -> npt.NDArray[Any]:
        n = batch.num_rows
        numeric = self.runtime.schema.numeric_only
        x = np.empty((n, len(self.names)), dtype=np.float64 if numeric else object)
        for j, (name, kind) in enumerate(zip(self.names, self.kinds, strict=True)):
            column = batch.column(name)
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            if kind == "categorical":
                values = [
                    None if is_missing(v) or v == "" else category_text(v)
                    for v in column.to_pylist()
                ]
                counter = self._categories[j]
                counter.update(v for v in values if v is not None)
                self._missing_categories[j] += sum(1 for v in values if v is None)
                x[:, j] = values
                continue
            if kind == "boolean" and not pa.types.is_floating(column.type):
                flags = [None if is_missing(v) else boolean_value(v) for v in column.to_pylist()]
                floats = np.asarray([math.nan if f is None else f for f in flags], np.float64)
            else:
                floats = _floats(column)
            low, high = self._bounds[j]
            self._moments[j].add(floats, low, high)
            x[:, j] = floats
        return x

    def add(self, batch: Any, predictions: Any) -> None:
        """One scored record batch (its feature columns as read) and its class indices (an
        Arrow int64 array or a NumPy array)."""
        n = batch.num_rows
        if not n:
            return
        if isinstance(predictions, pa.Array):
            predicted = np.frombuffer(
                predictions.buffers()[1],
                dtype=np.int64,
                count=len(predictions),
                offset=predictions.offset * 8,
            )
        else:
            predicted = np.asarray(predictions, dtype=np.int64)
        x = self._matrix(batch)
        self.rows += n
        self.predicted += np.bincount(predicted, minlength=len(self.predicted))
        keys = self._rng.random(n)
        if n > SAMPLE_LIMIT:
            chosen = np.argpartition(keys, SAMPLE_LIMIT)[:SAMPLE_LIMIT]
            keys, x, predicted = keys[chosen], x[chosen], predicted[chosen]
        keys = np.concatenate([self._keys, keys])
        sample = np.concatenate([self._sample, x])
        sampled = np.concatenate([self._sample_predictions, predicted])
        if len(keys) > SAMPLE_LIMIT:
            keep = np.argpartition(keys, SAMPLE_LIMIT)[:SAMPLE_LIMIT]
            keys, sample, sampled = keys[keep], sample[keep], sampled[keep]
        self._keys, self._sample, self._sample_predictions = keys, sample, sampled

    def profile(self) -> dict[str, Any]:
        """The training-profile layout of the batch (exact figures where they are cheap)."""
        classes = [str(c) for c in self.runtime.classes]
        profile = build_profile(
            self._sample,
            None,
            self.names,
            classes,
            predicted=self._sample_predictions,
            seed=self.seed,
            schema=self.runtime.schema,
        )
        total = max(self.rows, 1)
        profile["rows"] = self.rows
        for j, name in enumerate(self.names):
            entry = profile["features"][name]
            if j in self._categories:
                counts = self._categories[j].most_common(MAX_LISTED_CATEGORIES)
                entry["categories"] = {k: n / total for k, n in counts}
                entry["missing"] = self._missing_categories[j] / total
                continue
            moments = self._moments[j]
            if moments.count:
                entry.update(
                    min=moments.low,
                    max=moments.high,
                    mean=moments.mean,
                    std=math.sqrt(moments.m2 / moments.count),
                )
            entry["missing"] = moments.missing / total
        profile["prediction_balance"] = {
            c: float(n / total) for c, n in zip(classes, self.predicted, strict=True)
        }
        return profile

    def data_quality(self) -> DataQualityReport:
        """The checks of `monitor quality` over every row, against the training profile."""
        thresholds = self.thresholds
        if self.rows < thresholds.min_rows:
            return too_small(self.rows, 0, thresholds)
        features: dict[str, FeatureQuality] = {}
        for j, name in enumerate(self.names):
            spec = self.training["features"].get(name, {})
            if j in self._categories:
                counter = self._categories[j]
                known = {str(c) for c in spec.get("categories") or {}}
                unseen = sum(n for c, n in counter.items() if c not in known)
                missing = self._missing_categories[j]
                top = max([missing, *(n for _, n in counter.most_common(1))])
                features[name] = judged(
                    name,
                    "categorical",
                    self.rows,
                    {"missing": missing, "unseen": unseen},
                    top / self.rows,
                    len(known) <= 1,
                    thresholds,
                )
                continue
            moments = self._moments[j]
            column = np.asarray(self._sample[:, j], dtype=np.float64)
            _, counts = np.unique(column.astype(str), return_counts=True)
            top_share = float(counts.max() / len(column)) if len(column) else 0.0
            was_constant = float(spec.get("max", 0.0)) <= float(spec.get("min", 0.0))
            features[name] = judged(
                name,
                "numeric",
                self.rows,
                # a value of the wrong type stops scoring: none reaches a profile
                {"missing": moments.missing, "wrong_type": 0, "out_of_range": moments.out_of_range},
                top_share,
                was_constant,
                thresholds,
            )
        return verdict(self.rows, 0, features, thresholds)

    def drift(self) -> DriftReport:
        """Every drift statistic of the sample against the training profile."""
        m = len(self._sample)
        window = Window(
            features=self._sample,
            predictions=self._sample_predictions,
            ts=np.full(m, time.time()),
            versions={self.runtime.version: self.rows} if self.rows else {},
        )
        reference = f"{self.runtime.name}/{self.runtime.version}"
        return drift_report(window, self.training, self.monitor, reference=reference)

    def document(self) -> dict[str, Any]:
        """The whole ``--profile`` file: the profile, ``batch``, ``data_quality``, ``drift``."""
        return {
            **self.profile(),
            "batch": {
                "source": self.source,
                "model": self.runtime.name,
                "version": self.runtime.version,
                "scored_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sample_rows": len(self._sample),
            },
            "data_quality": self.data_quality().to_json(),
            "drift": self.drift().to_json(),
        }

    def write(self, destination: Path) -> Path:
        """Write the profile (``.json``) or the drift report (``.html``), atomically."""
        if destination.suffix.lower() == ".html":
            from petalops.monitoring.report import render_html  # matplotlib: only for HTML

            text = render_html(
                self.drift(),
                self.training,
                np.asarray(self._sample),
                title=f"petalops batch profile: {self.source}",
            )
        else:
            text = json.dumps(self.document(), indent=1)
        partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
        try:
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, destination)
        finally:
            partial.unlink(missing_ok=True)
        return destination
