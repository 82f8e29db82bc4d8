"""Scale-out: the same code against a real `mlflow server` on 127.0.0.1 (PETALOPS_MLFLOW_URI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.utils.mlflow_server import MlflowServer
from tests.utils.processes import free_port

from petalops.config import Settings
from petalops.pipeline.run import train
from petalops.registry import load_runtime, resolve

pytestmark = [pytest.mark.slow, pytest.mark.integration]


_ROOTS: dict[str, Path] = {}


def mlflow_server_root(url: str) -> Path:
    return _ROOTS[url]


@pytest.fixture(scope="module")
def mlflow_server(shared_mlflow_server: MlflowServer) -> str:
    _ROOTS[shared_mlflow_server.url] = shared_mlflow_server.root
    return shared_mlflow_server.url


def test_train_and_predict_through_a_tracking_server(mlflow_server: str, tmp_path: Path) -> None:
    settings = Settings(mlflow_uri=mlflow_server, home=tmp_path / ".petalops")
    result = train(settings)
    assert (result.version, result.alias) == ("1", "champion")
    # Nothing of the registry lives locally: only the verified bundle cache.
    assert not (tmp_path / ".petalops" / "mlflow.db").exists()
    info = resolve(settings)  # REST fast path
    assert info.version == "1" and info.sha256 and "champion" in info.aliases
    assert load_runtime(settings).predict_one([6.7, 3.0, 5.2, 2.3])[0] == 2
    from petalops.registry import model_tag
    from petalops.registry.store import set_model_tag

    set_model_tag(settings, "petalops.traffic", '{"strategy": "shadow"}')
    assert model_tag(settings, "iris", "petalops.traffic") == '{"strategy": "shadow"}'  # REST
    assert model_tag(settings, "missing-model", "petalops.traffic") is None
    # Alias moves through the REST API too (registry.writes), as MLflow's client reads them.
    from petalops.registry.store import client, delete_alias, set_alias

    set_alias(settings, "previous", "1", actor="ops@example")
    mlflow_client = client(settings)
    aliases = mlflow_client.get_registered_model("iris").aliases
    assert {alias: str(v) for alias, v in aliases.items()} == {"champion": "1", "previous": "1"}
    history = mlflow_client.get_model_version("iris", "1").tags["petalops.alias_history"]
    assert json.loads(history)[-1]["alias"] == "previous"
    delete_alias(settings, "previous")
    assert "previous" not in mlflow_client.get_registered_model("iris").aliases

    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    env["PETALOPS_MLFLOW_URI"] = mlflow_server
    fresh = tmp_path / "elsewhere"
    fresh.mkdir()
    # As in the serve-only image: resolve and fetch the bundle through the server's REST API
    # and artifact proxy with none of the MLflow client, pandas or scikit-learn importable.
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_MLFLOW, "predict", "--input", "[6.7,3.0,5.2,2.3]"],
        cwd=fresh,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"prediction": [2]}
    assert (fresh / ".petalops" / "cache" / "iris" / "1" / "manifest.json").is_file()


# Runs the petalops CLI with the training stack made unimportable (None in sys.modules).
WITHOUT_MLFLOW = (
    "import sys; sys.modules.update(dict.fromkeys(['mlflow', 'pandas', 'sklearn', 'pyarrow', "
    "'matplotlib', 'skl2onnx', 'boto3'])); sys.argv[0] = 'petalops'; "
    "from petalops.cli.app import main; main()"
)


def test_a_tampered_manifest_on_the_server_is_refused(mlflow_server: str, tmp_path: Path) -> None:
    settings = Settings(mlflow_uri=mlflow_server, home=tmp_path / ".petalops")
    info = resolve(settings, "iris/1")
    manifests = list(
        Path(mlflow_server_root(mlflow_server)).glob(
            f"**/{info.run_id}/artifacts/petalops/manifest.json"
        )
    )
    assert len(manifests) == 1
    original = manifests[0].read_bytes()
    manifests[0].write_bytes(original.replace(b'"iris"', b'"iris "', 1))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
        env["PETALOPS_MLFLOW_URI"] = mlflow_server
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                WITHOUT_MLFLOW,
                "predict",
                "--model",
                "iris/1",
                "--input",
                "[6.7,3.0,5.2,2.3]",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        manifests[0].write_bytes(original)
    assert out.returncode != 0
    assert "does not match" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / ".petalops" / "cache" / "iris" / "1").exists()


def test_unreachable_server_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    env["PETALOPS_MLFLOW_URI"] = f"http://127.0.0.1:{free_port()}"
    out = subprocess.run(
        [sys.executable, "-m", "petalops", "predict", "--input", "[6.7,3.0,5.2,2.3]"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "is unreachable" in out.stderr and "Traceback" not in out.stderr


def test_the_rest_reads_agree_with_mlflows_client(mlflow_server: str, tmp_path: Path) -> None:
    from dataclasses import replace

    from petalops.registry import get_run, list_versions, model_state, read_run_json, store

    settings = Settings(mlflow_uri=mlflow_server, home=tmp_path / ".petalops")
    if not list_versions(settings):
        train(settings)
    fast = list_versions(settings)
    assert [replace(v, artifact_uri="", created=0.0) for v in fast] == store.list_versions(settings)
    run_id = fast[-1].run_id
    assert get_run(settings, run_id).params == store.get_run(settings, run_id).params
    assert get_run(settings, run_id).metrics == store.get_run(settings, run_id).metrics
    aliases, _ = model_state(settings)
    assert aliases["champion"] == resolve(settings, "iris@champion").version
    assert model_state(settings, "missing-model") == ({}, {})
    assert read_run_json(settings, run_id, "gate.json")["checks"]
    assert not (tmp_path / ".petalops" / "mlflow.db").exists()


def test_the_catalog_reads_a_tracking_server_over_rest(mlflow_server: str, tmp_path: Path) -> None:
    from petalops.registry import store
    from petalops.registry.catalog import gate_checks, read_catalog

    settings = Settings(mlflow_uri=mlflow_server, home=tmp_path / ".petalops")
    if not _registered(settings):  # run alone, this test trains its own version
        train(settings)
    fast = read_catalog(settings)  # REST
    infos = store.list_versions(settings)
    assert fast.aliases["champion"]
    assert fast.aliases == {a: i.version for i in infos for a in i.aliases}
    assert [v.version for v in fast.versions] == [i.version for i in infos][: len(fast.versions)]
    for lineage, info in zip(fast.versions, infos, strict=False):
        record = store.get_run(settings, info.run_id)
        assert lineage.run is not None
        assert (lineage.sha256, lineage.info.tags, lineage.run.params, lineage.run.tags) == (
            info.sha256,
            info.tags,
            record.params,
            record.tags,
        )
        assert lineage.run.metrics == pytest.approx(record.metrics)
        assert lineage.info.created > 1.7e9
    # gate.json through the server's artifact proxy, as the bundle is fetched.
    assert {c["name"] for c in gate_checks(settings, fast.versions[0])} >= {"min_accuracy"}


def _registered(settings: Settings) -> bool:
    from petalops.errors import NotFoundError
    from petalops.registry.catalog import read_catalog

    try:
        return bool(read_catalog(settings).versions)
    except NotFoundError:
        return False
