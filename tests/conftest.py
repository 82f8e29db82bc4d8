"""Shared fixtures. Training into MLflow is slow (schema migration ~3 s, a run ~2 s), so one
session-scoped store is built once and copied for each test that needs it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.runtime.signing import KeyPair, generate
from tests.utils.mlflow_server import MlflowServer

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _settings(home: Path, **extra: object) -> Settings:
    return Settings(home=home, **extra)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's PETALOPS_* variables or writes into the working tree."""
    for key in list(os.environ):
        if key.startswith("PETALOPS_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def trainer_key(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """The Ed25519 pair the session store's versions are signed with (`signing.key_file`);
    no test trusts it unless it sets `signing.trusted_keys` to its ``.pub``."""
    return generate(tmp_path_factory.mktemp("trainer-key"))


@pytest.fixture(scope="session")
def _session_stores(
    tmp_path_factory: pytest.TempPathFactory, trainer_key: KeyPair
) -> dict[str, Path]:
    from petalops.pipeline.run import train
    from petalops.registry.store import ensure_experiment

    root = tmp_path_factory.mktemp("stores")
    empty = root / "empty" / ".petalops"
    ensure_experiment(_settings(empty))  # runs MLflow's schema migrations once
    trained = root / "trained" / ".petalops"
    shutil.copytree(empty, trained)
    signing = {"key_file": trainer_key.private}
    settings = _settings(trained, signing=signing)
    train(settings)  # v1 @champion, signed
    second = _settings(trained, model={"params": {"max_iter": 200, "C": 0.3}}, signing=signing)
    train(second, run_name="second")  # v2 @challenger, other parameters, signed
    return {"empty": empty, "trained": trained}


@pytest.fixture(scope="session")
def shared_mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real `mlflow server` for the session (starting one costs 10-40 s on 2 cores); each
    test that uses it registers under a project name of its own."""
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def empty_settings(tmp_path: Path, _session_stores: dict[str, Path]) -> Settings:
    """Settings on a fresh, already-migrated, empty MLflow store of this test's own."""
    home = tmp_path / ".petalops"
    shutil.copytree(_session_stores["empty"], home)
    return _settings(home)


@pytest.fixture
def trained_settings(tmp_path: Path, _session_stores: dict[str, Path]) -> Settings:
    """Settings on a store of this test's own holding iris v1 @champion and v2 @challenger,
    both signed by ``trainer_key``.

    Artifacts of the two versions stay in the session store (read-only for tests)."""
    home = tmp_path / ".petalops"
    shutil.copytree(_session_stores["trained"], home, ignore=shutil.ignore_patterns("cache"))
    return _settings(home)
