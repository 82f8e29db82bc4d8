"""Bundle downloads through MLflow's artifact proxy: addresses, and the error without MLflow."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.errors import NotFoundError, RegistryUnavailableError
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


# The no-MLflow reads agree with MLflow's client on the same embedded store, and never
# create a store that is not there.


def test_list_versions_reads_what_mlflow_reads(trained_settings: Settings) -> None:
    from petalops.registry import list_versions, store

    fast = list_versions(trained_settings)
    assert [v.version for v in fast] == ["2", "1"]
    # MLflow's search leaves the run's artifact location out; the fast read has it, and the
    # version's creation time (the control room shows it).
    slow = store.list_versions(trained_settings)
    assert [replace(v, artifact_uri="", created=0.0) for v in fast] == slow
    assert all(v.artifact_uri.startswith("file://") and v.created > 1.7e9 for v in fast)


def test_get_run_reads_what_mlflow_reads(trained_settings: Settings) -> None:
    from petalops.registry import get_run, resolve, store

    run_id = resolve(trained_settings, "iris@champion").run_id
    fast = get_run(trained_settings, run_id)
    slow = store.get_run(trained_settings, run_id)
    assert (fast.params, fast.tags, fast.start_time) == (slow.params, slow.tags, slow.start_time)
    assert fast.metrics == pytest.approx(slow.metrics)
    assert fast.metrics["accuracy"] > 0.5


def test_model_state_reads_aliases_and_tags(trained_settings: Settings) -> None:
    from petalops.registry import model_state, store

    store.set_model_tag(trained_settings, "petalops.traffic", '{"strategy": "canary"}')
    aliases, tags = model_state(trained_settings)
    assert aliases == {"champion": "1", "challenger": "2"}
    assert tags["petalops.traffic"] == '{"strategy": "canary"}'
    assert model_state(trained_settings, "no-such-model") == ({}, {})


def test_read_run_json_reads_an_artifact(trained_settings: Settings) -> None:
    from petalops.registry import read_run_json, resolve, store

    run_id = resolve(trained_settings).run_id
    gate = read_run_json(trained_settings, run_id, "gate.json")
    assert gate == store.read_run_json(trained_settings, run_id, "gate.json")
    assert gate["checks"]
    with pytest.raises(NotFoundError, match="has no artifact 'nope.json'"):
        read_run_json(trained_settings, run_id, "nope.json")


def test_reads_of_a_missing_store_create_nothing(tmp_path: Path) -> None:
    from petalops.registry import get_run, list_versions, model_state

    settings = Settings(home=tmp_path / ".petalops")
    for read in (list_versions, model_state, lambda s: get_run(s, "abc")):
        with pytest.raises(NotFoundError, match="no model registry at .*run `petalops train`"):
            read(settings)
    assert not (tmp_path / ".petalops").exists()
