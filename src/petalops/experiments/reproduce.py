"""Retrain a registered version from its registry entry alone and check the result is identical.

The registry entry holds everything needed: ``config.json`` (model, split, seed, data
settings), the data snapshot (``petalops.data_snapshot``), the fitted parameters
(``fitted.json``), the metrics and the library versions (``petalops.lib.*`` tags). The
original data file is never read: it may have been edited or deleted since.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from petalops.config import IRIS_SOURCE, Settings
from petalops.data.load import load_dataset
from petalops.errors import ConfigError, DataError, GateFailedError, NotFoundError, PetalopsError
from petalops.experiments.restore import materialize
from petalops.pipeline.run import StepCallback, train
from petalops.pipeline.snapshot import SNAPSHOT_TAG, builtin_uri
from petalops.pipeline.track import library_versions
from petalops.registry import store

RECORDED_SECTIONS = ("project", "seed", "data", "model", "split", "gate")


class NotReproducedError(PetalopsError):
    """A reproduction ran but its metrics or fitted parameters differ from the recorded ones."""

    exit_code = 1
    http_status = 409


@dataclass
class Reproduction:
    """The outcome of a reproduction: what matched, what differed, by how much."""

    name: str
    version: str
    run_id: str
    new_run_id: str
    data_sha256: str
    data_uri: str
    metrics_identical: bool
    fitted_identical: bool
    metric_diffs: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    fitted_diffs: dict[str, float | None] = field(default_factory=dict)
    library_diffs: dict[str, tuple[str, str]] = field(default_factory=dict)
    bundle_identical: bool | None = None
    train_key_identical: bool = False
    registered_version: str | None = None

    @property
    def identical(self) -> bool:
        return self.metrics_identical and self.fitted_identical

    def mismatch(self) -> NotReproducedError:
        what = [*self.metric_diffs, *self.fitted_diffs][:5]
        return NotReproducedError(
            f"{self.name} v{self.version} did not reproduce: {', '.join(what) or 'data'} differ "
            f"(reproduction run {self.new_run_id})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "identical": self.identical,
            "metrics_identical": self.metrics_identical,
            "fitted_identical": self.fitted_identical,
            "bundle_identical": self.bundle_identical,
            "train_key_identical": self.train_key_identical,
            "metric_diffs": {k: list(v) for k, v in self.metric_diffs.items()},
            "fitted_diffs": self.fitted_diffs,
            "library_diffs": {
                k: {"recorded": a, "now": b} for k, (a, b) in self.library_diffs.items()
            },
            "run_id": self.run_id,
            "new_run_id": self.new_run_id,
            "data_sha256": self.data_sha256,
            "data_uri": self.data_uri,
            "registered_version": self.registered_version,
        }


def recorded_settings(current: Settings, config: dict[str, Any]) -> Settings:
    """The current settings (stores, server) with every training-relevant section as recorded."""
    missing = [k for k in RECORDED_SECTIONS if k not in config]
    if missing:
        raise ConfigError(f"the recorded config.json lacks {missing}; it cannot be reproduced")
    merged = current.model_dump(mode="json", by_alias=True)
    merged.update({k: config[k] for k in RECORDED_SECTIONS})
    try:
        return Settings(**merged)
    except Exception as exc:  # pydantic ValidationError: a setting this petalops no longer has
        first = str(exc).splitlines()[0]
        raise ConfigError(f"the recorded config no longer validates: {first}") from None


def library_differences(tags: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Libraries whose version now differs from the ``petalops.lib.*`` tags of a run."""
    now = library_versions()
    diffs = {}
    for key, recorded in sorted(tags.items()):
        if key.startswith("petalops.lib."):
            lib = key.removeprefix("petalops.lib.")
            current = now.get(lib, "(not installed)")
            if current != recorded:
                diffs[lib] = (recorded, current)
    return diffs


def _max_abs_diff(a: Any, b: Any) -> float | None:
    try:
        x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if x.shape != y.shape:
        return None
    return float(np.max(np.abs(x - y))) if x.size else 0.0


def compare_fitted(old: dict[str, Any], new: dict[str, Any]) -> dict[str, float | None]:
    """Keys whose learned values are not bit-identical, with the largest absolute difference
    (``None`` when the shapes differ or the key exists on one side only)."""
    diffs: dict[str, float | None] = {}
    for key in sorted(set(old) | set(new)):
        if key not in old or key not in new:
            diffs[key] = None
        elif old[key] != new[key]:
            diffs[key] = _max_abs_diff(old[key], new[key])
    return diffs


def compare_metrics(
    old: dict[str, float], new: dict[str, float]
) -> dict[str, tuple[float | None, float | None]]:
    diffs: dict[str, tuple[float | None, float | None]] = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        same = a is not None and b is not None and (a == b or (math.isnan(a) and math.isnan(b)))
        if not same:
            diffs[key] = (a, b)
    return diffs


def _manifest_sha(settings: Settings, run_id: str) -> str | None:
    with tempfile.TemporaryDirectory(prefix="petalops-repro-") as tmp:
        try:
            path = store.download_run_artifacts(
                settings, run_id, "petalops/manifest.json", Path(tmp)
            )
        except PetalopsError:
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()


def _legacy_source(source: str, sha256: str, recorded: Settings) -> str:
    """For versions trained before snapshots: the bundled Iris set, or the original file if it
    still holds exactly the recorded data (checked by hash); else no source ("")."""
    if source.startswith(IRIS_SOURCE):
        return builtin_uri()
    path = Path(source)
    if not path.is_file():
        return ""
    try:
        if load_dataset(recorded.data, path).fingerprint.sha256 == sha256:
            return f"file:{path}"
    except DataError:
        pass
    return ""


def reproduce(
    settings: Settings,
    version: str,
    *,
    register: bool = False,
    on_step: StepCallback | None = None,
) -> Reproduction:
    """Retrain ``version`` from its registry entry and compare metrics and fitted parameters."""
    info = store.get_version(settings, version)
    run = store.get_run(settings, info.run_id)
    try:
        config = store.read_run_json(settings, info.run_id, "config.json")
        fitted = store.read_run_json(settings, info.run_id, "fitted.json")
        metrics = store.read_run_json(settings, info.run_id, "metrics.json")
    except PetalopsError:
        raise NotFoundError(
            f"{info.name} v{info.version} (run {info.run_id}) has no config.json / fitted.json; "
            "it was not trained by petalops and cannot be reproduced"
        ) from None
    sha = run.tags.get("petalops.data_sha256", "")
    uri = run.tags.get(SNAPSHOT_TAG, "")
    if not sha:
        raise NotFoundError(f"{info.name} v{info.version} records no data hash; cannot reproduce")
    recorded = recorded_settings(settings, config)
    if not uri:
        uri = _legacy_source(run.params.get("data.source", ""), sha, recorded)
    data_path = materialize(settings, uri, sha, recorded.data)
    diffs = library_differences(run.tags)

    try:
        result = train(
            recorded,
            data_path,
            register=register,
            on_step=on_step,
            run_name=f"reproduce {info.name} v{info.version}",
        )
    except GateFailedError as exc:  # --register compares with today's champion
        raise GateFailedError(f"reproduction of v{info.version}: {exc.message}") from None

    new_fitted = json.loads(json.dumps(result.fitted))  # the same JSON round trip as fitted.json
    new_metrics = json.loads(json.dumps(result.metrics))
    metric_diffs = compare_metrics(metrics, new_metrics)
    fitted_diffs = compare_fitted(fitted, new_fitted)
    new_sha = _manifest_sha(settings, result.run_id)
    return Reproduction(
        name=info.name,
        version=info.version,
        run_id=info.run_id,
        new_run_id=result.run_id,
        data_sha256=result.data_sha256,
        data_uri=uri,
        metrics_identical=not metric_diffs and result.data_sha256 == sha,
        fitted_identical=not fitted_diffs,
        metric_diffs=metric_diffs,
        fitted_diffs=fitted_diffs,
        library_diffs=diffs,
        bundle_identical=(new_sha == info.sha256) if new_sha and info.sha256 else None,
        train_key_identical=result.train_key == run.tags.get("petalops.train_key"),
        registered_version=result.version,
    )
