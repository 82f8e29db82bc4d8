"""Fixtures for the server's unit tests: real model bundles, a real app, no network.

The registry is replaced by `tests.utils.serving.BundleSource`, which serves bundles written
by the real compiler (`petalops.pipeline.compile.write_bundle`) from fitted scikit-learn
models; the runtime, checksum verification and warm-up are the production code. The integration tests
(tests/integration/test_server*.py) run against the real registry and a real process.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import BundleSource, make_bundle

from petalops.config import Settings
from petalops.serving.app import PetalopsApp, create_app


@pytest.fixture(scope="session")
def bundle_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Real versions: 1 (C=1.0), 2 (C=0.01, some answers differ), 3 (a tree: ONNX Runtime)."""
    root = tmp_path_factory.mktemp("bundles")
    return {
        "1": make_bundle(root / "v1", 1.0),
        "2": make_bundle(root / "v2", 0.01),
        "3": make_bundle(root / "v3", 0.0, tree=True),
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
