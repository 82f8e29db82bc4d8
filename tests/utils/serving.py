"""Helpers for the server's tests: real model bundles behind a registry stand-in, a sink
that keeps what it is given, and a way to read the worker's JSON log."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from petalops.config import IRIS_CLASSES, IRIS_FEATURES
from petalops.errors import NotFoundError
from petalops.monitoring.record import answer_records
from petalops.pipeline.compile import write_bundle
from petalops.pipeline.profile import build_profile
from petalops.registry import VersionInfo
from petalops.rollout.routing import TrafficPolicy
from petalops.runtime.model import ModelRuntime, open_bundle
from petalops.serving.faults import FAULT_TAG, with_faults
from petalops.serving.holder import PIN_TAG
from petalops.serving.source import Desired

ROW = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
FEATURES = list(IRIS_FEATURES)
RECORD = dict(zip(FEATURES, ROW, strict=True))


@dataclass
class BundleSource:
    """A registry stand-in over real bundle directories: versions, aliases, a policy.

    ``faults`` maps a version to a `petalops.serving.faults` spec (``"error"``): that
    version then fails its live predictions, after a clean warm-up.
    """

    bundles: dict[str, tuple[Path, str]]
    name: str = "iris"
    aliases: dict[str, str] = field(default_factory=lambda: {"champion": "1"})
    policy: TrafficPolicy = field(default_factory=TrafficPolicy.none)
    fail: Exception | None = None
    faults: dict[str, str] = field(default_factory=dict)
    loads: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)
    # Every version may be pinned with X-Model-Version unless a test says otherwise.
    allow_pin: bool = True

    def _info(self, version: str) -> VersionInfo:
        if version not in self.bundles:
            raise NotFoundError(f"model {self.name!r} has no version {version}")
        aliases = sorted(a for a, v in self.aliases.items() if v == version)
        tags = {PIN_TAG: "true"} if self.allow_pin else {}
        return VersionInfo(self.name, version, "run", self.bundles[version][1], "", aliases, tags)

    def desired(self) -> Desired:
        if self.fail is not None:
            raise self.fail
        get = self.aliases.get
        return Desired(
            champion=self._info(self.aliases["champion"]),
            challenger=self._info(get("challenger", "")) if get("challenger") else None,
            previous=self._info(get("previous", "")) if get("previous") else None,
            policy=self.policy,
        )

    def resolve_version(self, version: str) -> VersionInfo:
        return self._info(version)

    def last_known_good(self) -> list[VersionInfo]:
        return [self._info(version) for version in self.known]

    def remember(self, info: VersionInfo) -> None:
        self.known = [info.version, *(v for v in self.known if v != info.version)]

    def load(self, info: VersionInfo) -> ModelRuntime:
        self.loads.append(info.version)
        directory, _ = self.bundles[info.version]
        runtime = open_bundle(directory, info.name, info.version, info.sha256)
        spec = self.faults.get(info.version)
        return with_faults(runtime, {FAULT_TAG: spec}) if spec else runtime


def make_bundle(directory: Path, c: float, tree: bool = False) -> tuple[Path, str]:
    """A real bundle (the production compiler's) of a model fitted on Iris, and its sha256."""
    iris = load_iris()
    x = np.asarray(iris.data, dtype=np.float64)
    y = np.asarray(iris.target, dtype=np.int64)
    classifier: Any = (
        DecisionTreeClassifier(max_depth=3, random_state=0)
        if tree
        else LogisticRegression(C=c, max_iter=500)
    )
    pipeline = Pipeline([("clf", classifier)]).fit(x, y)
    profile = build_profile(x, y, IRIS_FEATURES, IRIS_CLASSES)
    digest = write_bundle(directory, pipeline, "iris", IRIS_FEATURES, IRIS_CLASSES, profile, x)
    return directory, digest


class ListSink:
    """A prediction sink that keeps every record it is given."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def log_many(self, records: list[dict[str, Any]]) -> int:
        self.records.extend(records)
        return len(records)

    def log_answer(self, *answer: Any) -> int:
        made = answer_records(*answer)  # the records a BoundedSink makes of an answer
        self.records.extend(made)
        return len(made)

    def close(self, timeout: float = 10.0) -> None:
        pass


def log_lines(app: Any, path: Path) -> list[dict[str, Any]]:
    """Every JSON line the app's worker has written to its log file so far."""
    app.server.log.flush()
    return [json.loads(line) for line in path.read_text().splitlines()]
