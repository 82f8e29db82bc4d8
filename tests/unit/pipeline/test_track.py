"""The track step: what a training run records (params, tags, files) and the run itself."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import petalops
from petalops.config import Settings
from petalops.pipeline import track
from petalops.pipeline.evaluate import Scores
from petalops.pipeline.gate import Check, GateResult
from petalops.pipeline.load import load
from petalops.registry.store import client

PASSED = GateResult([Check("min_accuracy", True, "accuracy 0.9667 vs floor 0.9000")])
FAILED = GateResult([Check("min_accuracy", False, "accuracy 0.5000 vs floor 0.9000")])
SCORES = Scores(metrics={"accuracy": 0.9667}, confusion=[[10, 0, 0], [0, 9, 1], [0, 0, 10]])


def test_params_name_the_model_the_split_and_the_data() -> None:
    settings = Settings(model={"params": {"C": 0.5}}, seed=3)  # type: ignore[arg-type]
    params = track.run_params(settings, load(settings).dataset)
    assert params["model.class"] == "sklearn.linear_model.LogisticRegression"
    assert params["model.params.C"] == 0.5
    assert (params["seed"], params["split.test_size"], params["data.rows"]) == (3, 0.2, 150)
    assert params["data.features"] == "sepal_length,sepal_width,petal_length,petal_width"


def test_tags_carry_the_key_the_hash_the_verdict_and_the_libraries() -> None:
    data = load(Settings())
    tags = track.run_tags(data, PASSED)
    assert tags["petalops.train_key"] == data.key
    assert tags["petalops.data_sha256"] == data.sha256
    assert tags["petalops.gate"] == "passed"
    assert track.run_tags(data, FAILED)["petalops.gate"] == "failed"
    assert tags["petalops.lib.petalops"] == petalops.__version__
    assert set(track.library_versions()) <= {k.removeprefix("petalops.lib.") for k in tags}


def test_the_commit_is_recorded_only_inside_a_git_work_tree(tmp_path: Path) -> None:
    assert track.git_commit(tmp_path) is None
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "one",
        ],
        check=True,
    )
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert track.git_commit(tmp_path) == head


def test_mlflow_source_tags_name_the_commit_and_the_repository(tmp_path: Path) -> None:
    assert track.source_tags(tmp_path) == {}
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "one"], check=True)
    head = track.git_commit(tmp_path)
    assert track.source_tags(tmp_path) == {
        "mlflow.source.git.commit": head,
        "petalops.git_commit": head,
    }
    subprocess.run([*git, "remote", "add", "origin", "https://git.example/p.git"], check=True)
    tags = track.source_tags(tmp_path)
    assert tags["mlflow.source.git.repoURL"] == tags["mlflow.source.name"]
    assert tags["mlflow.source.name"] == "https://git.example/p.git"


def test_train_runs_get_readable_numbered_names(empty_settings: Settings) -> None:
    data = load(empty_settings)
    names = []
    for _ in range(2):
        with track.tracked_run(
            empty_settings, data, params={}, metrics={}, tags={}, run_name=None
        ) as run_id:
            pass
        names.append(client(empty_settings).get_run(run_id).info.run_name)
    assert names == ["train-iris-1", "train-iris-2"]


def test_every_artifact_file_is_written(tmp_path: Path) -> None:
    data = load(Settings())
    track.write_artifacts(tmp_path, data, SCORES, PASSED, {"clf.coef_": [[1.0]]}).wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(track.ARTIFACTS)
    assert json.loads((tmp_path / "config.json").read_text()) == data.config
    assert json.loads((tmp_path / "gate.json").read_text())["passed"] is True
    assert json.loads((tmp_path / "data.json").read_text())["sha256"] == data.sha256


def test_the_run_holds_params_metrics_tags_and_the_dataset(empty_settings: Settings) -> None:
    data = load(empty_settings)
    params = track.run_params(empty_settings, data.dataset)
    with track.tracked_run(
        empty_settings,
        data,
        params=params,
        metrics=SCORES.metrics,
        tags={"petalops.gate": "passed"},
        run_name="unit",
    ) as run_id:
        pass
    run = client(empty_settings).get_run(run_id)
    assert run.info.run_name == "unit" and run.info.status == "FINISHED"
    assert run.data.params["data.rows"] == "150"
    assert run.data.metrics == {"accuracy": 0.9667}
    assert run.data.tags["petalops.gate"] == "passed"
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.name == "iris"


def test_a_failure_inside_the_run_marks_it_failed(empty_settings: Settings) -> None:
    data = load(empty_settings)
    with (
        pytest.raises(RuntimeError, match="boom"),
        track.tracked_run(empty_settings, data, params={}, metrics={}, tags={}) as run_id,
    ):
        raise RuntimeError("boom")
    assert client(empty_settings).get_run(run_id).info.status == "FAILED"
