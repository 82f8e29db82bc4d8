"""Fixtures for the server's unit tests: real model bundles, a real app, no network.

The registry is replaced by `BundleSource`, which serves bundles written by the real
compiler (`petalops.pipeline.compile.write_bundle`) from fitted scikit-learn models; the
runtime, checksum verification and warm-up are the production code. The integration tests
(tests/integration/test_server*.py) run against the real registry and a real process.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier
from starlette.testclient import TestClient

from petalops.config import IRIS_CLASSES, IRIS_FEATURES, Settings
from petalops.errors import NotFoundError
from petalops.pipeline.compile import write_bundle
from petalops.pipeline.profile import build_profile
from petalops.registry import VersionInfo
from petalops.rollout.routing import TrafficPolicy
from petalops.runtime.model import ModelRuntime, open_bundle
from petalops.serving.app import PetalopsApp, create_app
from petalops.serving.source import Desired


@dataclass
class BundleSource:
    """A registry stand-in over real bundle directories: versions, aliases, a policy."""

    bundles: dict[str, tuple[Path, str]]
    name: str = "iris"
    aliases: dict[str, str] = field(default_factory=lambda: {"champion": "1"})
    policy: TrafficPolicy = field(default_factory=TrafficPolicy.none)
    fail: Exception | None = None
    loads: list[str] = field(default_factory=list)

    def _info(self, version: str) -> VersionInfo:
        if version not in self.bundles:
            raise NotFoundError(f"model {self.name!r} has no version {version}")
        return VersionInfo(self.name, version, "run", self.bundles[version][1])

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

    def load(self, info: VersionInfo) -> ModelRuntime:
        self.loads.append(info.version)
        directory, _ = self.bundles[info.version]
        return open_bundle(directory, info.name, info.version, info.sha256)


def _bundle(directory: Path, c: float, tree: bool = False) -> tuple[Path, str]:
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


@pytest.fixture(scope="session")
def bundle_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Real versions: 1 (C=1.0), 2 (C=0.01, some answers differ), 3 (a tree: ONNX Runtime)."""
    root = tmp_path_factory.mktemp("bundles")
    return {
        "1": _bundle(root / "v1", 1.0),
        "2": _bundle(root / "v2", 0.01),
        "3": _bundle(root / "v3", 0.0, tree=True),
    }


@pytest.fixture
def source(bundle_dirs: dict[str, tuple[Path, str]], tmp_path: Path) -> BundleSource:
    # Each test gets its own copies, so a test may corrupt one.
    copies = {}
    for version, (directory, digest) in bundle_dirs.items():
        target = tmp_path / "bundles" / version
        shutil.copytree(directory, target)
        copies[version] = (target, digest)
    return BundleSource(copies)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        home=tmp_path / ".petalops",
        admin_token="s3cret",
        reconcile_seconds=60,
        serve={"max_batch": 10},
    )


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return tmp_path / "server.log"


@pytest.fixture
def app(settings: Settings, source: BundleSource, log_path: Path) -> Iterator[PetalopsApp]:
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        yield create_app(settings, source=source, log_fd=fd, open_sink=False)
    finally:
        os.close(fd)


@pytest.fixture
def client(app: PetalopsApp) -> Iterator[TestClient]:
    """A client of a started app (lifespan run, first model loaded)."""
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
