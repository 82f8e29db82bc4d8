"""Bundle downloads through MLflow's artifact proxy: addresses, and the error without MLflow."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.errors import RegistryUnavailableError
from petalops.registry.resolve import VersionInfo, _proxy_url, fetch_bundle


@pytest.mark.parametrize(
    ("tracking", "artifacts", "expected"),
    [
        (
            "http://mlflow:5000",
            "mlflow-artifacts:/1/abc/artifacts",
            "http://mlflow:5000/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/petalops",
        ),
        (
            "https://mlflow.example.com/",
            "mlflow-artifacts://store.example.com:8443/9/r 1/artifacts",
            "https://store.example.com:8443/api/2.0/mlflow-artifacts/artifacts/9/r%201/artifacts/petalops",
        ),
        ("http://mlflow:5000", "s3://bucket/1/abc/artifacts", None),
        ("http://mlflow:5000", "file:///srv/mlruns/1/abc/artifacts", None),
    ],
)
def test_proxy_url(tracking: str, artifacts: str, expected: str | None) -> None:
    assert _proxy_url(tracking, artifacts) == expected


def test_unproxied_artifacts_without_mlflow_name_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "mlflow" else real(name, *args),
    )
    settings = Settings(mlflow_uri="http://127.0.0.1:9", home=tmp_path / ".petalops")
    info = VersionInfo("iris", "3", "abc", "0" * 64, artifact_uri="s3://bucket/1/abc/artifacts")
    with pytest.raises(RegistryUnavailableError, match="--serve-artifacts"):
        fetch_bundle(settings, info)
    assert not any((tmp_path / ".petalops" / "cache" / "iris").glob("*")), "no partial bundle"
