"""Experiments against a real MLflow store: snapshots, reproduce, tune, compare, export, lineage,
the gate's model tests, and the commands' exit codes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import sklearn

from petalops.cli.app import app
from petalops.cli.common import run_guarded
from petalops.cli.registry import version_details
from petalops.config import Settings
from petalops.data.load import iris_frame, load_dataset
from petalops.errors import GateFailedError, NotFoundError
from petalops.experiments.reproduce import reproduce
from petalops.experiments.restore import materialize
from petalops.experiments.tune import cv_scores, training_split, tune
from petalops.pipeline.run import train
from petalops.pipeline.snapshot import SNAPSHOT_TAG, cache_path
from petalops.registry import load_runtime
from petalops.registry.store import client, find_runs, get_run, list_versions, set_alias


def cli(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """Run `petalops ARGS` in this process, through the same error table as the console script."""
    monkeypatch.setattr(sys, "argv", ["petalops", *args])
    code = run_guarded(app)
    out = capsys.readouterr()
    return code, out.out, out.err


def get_version_run(settings: Settings, version: str = "2") -> str:
    from petalops.registry.store import get_version

    return get_version(settings, version).run_id


def _run_dir(settings: Settings, run_id: str) -> Path:
    from urllib.parse import urlparse

    return Path(urlparse(client(settings).get_run(run_id).info.artifact_uri).path)


def _runs_holding_a_snapshot(settings: Settings) -> set[str]:
    runs = find_runs(settings, "tags.`petalops.data_snapshot` LIKE 'runs:/%'", max_results=50)
    return {
        r.run_id for r in runs if (_run_dir(settings, r.run_id) / "data/snapshot.parquet").is_file()
    }


def test_reproduce_is_bit_identical_after_the_file_is_modified_then_deleted(
    empty_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "flowers.csv"
    original = iris_frame().sample(frac=1.0, random_state=0)  # not the bundled set's hash
    original.to_csv(path, index=False)
    first = train(empty_settings, path)
    record = get_run(empty_settings, first.run_id)
    assert record.tags[SNAPSHOT_TAG] == f"runs:/{first.run_id}/data/snapshot.parquet"

    original.iloc[:90].to_csv(path, index=False)  # edited in place
    second = train(empty_settings, path)
    assert second.data_sha256 != first.data_sha256

    edited = reproduce(empty_settings, first.version or "")
    assert edited.identical, edited.to_json()
    assert edited.data_sha256 == first.data_sha256
    assert edited.fitted_diffs == {}
    assert edited.metric_diffs == {}
    assert edited.train_key_identical
    assert edited.registered_version is None
    assert [v.version for v in list_versions(empty_settings)] == ["2", "1"]  # nothing registered

    path.unlink()
    shutil.rmtree(empty_settings.home_dir / "snapshots")  # only the artifact store is left
    deleted = reproduce(empty_settings, "1")
    assert deleted.identical
    assert deleted.new_run_id != edited.new_run_id
    assert cache_path(empty_settings, first.data_sha256).is_file()
    # Content-addressed: two distinct datasets, two stored copies, however many runs used them.
    assert _runs_holding_a_snapshot(empty_settings) == {first.run_id, second.run_id}
    reused = get_run(empty_settings, deleted.new_run_id).tags[SNAPSHOT_TAG]
    assert reused == record.tags[SNAPSHOT_TAG]

    # A local copy edited behind our back is detected by its hash and fetched again.
    cached = cache_path(empty_settings, first.data_sha256)
    iris_frame().iloc[:60].to_parquet(cached)
    again = materialize(empty_settings, reused, first.data_sha256, empty_settings.data)
    assert again == cached
    assert load_dataset(empty_settings.data, cached).fingerprint.sha256 == first.data_sha256

    # Without a snapshot (a version from before they existed) and without its file: refused.
    client(empty_settings).delete_tag(second.run_id, SNAPSHOT_TAG)
    with pytest.raises(NotFoundError, match="no data snapshot recorded"):
        reproduce(empty_settings, "2")


def test_a_version_from_before_snapshots_reproduces_from_the_bundled_iris_set(
    trained_settings: Settings,
) -> None:
    run_id = get_version_run(trained_settings, "2")
    client(trained_settings).delete_tag(run_id, SNAPSHOT_TAG)
    report = reproduce(trained_settings, "2")
    assert report.identical
    assert report.data_uri.startswith("sklearn:iris?scikit-learn=")


def test_reproduce_reports_changed_fit_and_library_drift_and_exits_1(
    empty_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = train(empty_settings)
    assert get_run(empty_settings, result.run_id).tags[SNAPSHOT_TAG] == (
        f"sklearn:iris?scikit-learn={sklearn.__version__}"
    )
    # Pretend the recorded fit and the recorded scikit-learn were different.
    fitted_file = _run_dir(empty_settings, result.run_id) / "fitted.json"
    fitted = json.loads(fitted_file.read_text())
    fitted["clf.intercept_"][0] += 1e-9
    fitted_file.write_text(json.dumps(fitted))
    client(empty_settings).set_tag(result.run_id, "petalops.lib.scikit-learn", "0.0.1")

    code, out, err = cli(["reproduce", "1", "--json"], capsys, monkeypatch)
    assert code == 1, err
    report = json.loads(out)
    assert report["identical"] is False
    assert report["metrics_identical"] is True
    assert list(report["fitted_diffs"]) == ["clf.intercept_"]
    assert report["fitted_diffs"]["clf.intercept_"] == pytest.approx(1e-9, rel=1e-3)
    assert report["library_diffs"] == {
        "scikit-learn": {"recorded": "0.0.1", "now": sklearn.__version__}
    }


def test_tuned_model_beats_or_equals_the_default_and_registers_through_the_gate(
    empty_settings: Settings,
) -> None:
    result = tune(empty_settings, space={"C": [0.05, 10.0, 100.0]}, cv=3, register=True)
    dataset = load_dataset(empty_settings.data)
    rows = training_split(empty_settings, dataset.y)
    default = cv_scores(
        empty_settings, dataset.x[rows], dataset.y[rows], dataset.features, {}, 3, "accuracy"
    )
    assert result.baseline.mean == pytest.approx(float(default.mean()), abs=0)
    assert result.best.mean >= float(default.mean())
    assert [t.mean for t in result.trials] == sorted((t.mean for t in result.trials), reverse=True)
    # Every trial is a nested run under the parent.
    children = find_runs(
        empty_settings, f"tags.`mlflow.parentRunId` = '{result.parent_run_id}'", max_results=50
    )
    assert len(children) == 4
    # Each trial carries the dataset input, as a train run does.
    from petalops.registry.store import client

    for child in children:
        inputs = client(empty_settings).get_run(child.run_id).inputs
        assert inputs is not None
        [logged] = inputs.dataset_inputs
        assert logged.dataset.name == "iris"
        assert child.tags["petalops.data_sha256"].startswith(logged.dataset.digest)
    # --register: the best parameters went through train → gate → registry.
    assert result.train is not None
    assert result.train.version == "1"
    registered = get_run(empty_settings, result.train.run_id)
    assert registered.params.get("model.params.C") == (
        str(result.best.params["C"]) if result.best.params else None
    )


def test_tune_command_prints_a_sorted_table(
    empty_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = cli(["tune", "--param", "C=0.01,10", "--cv", "3"], capsys, monkeypatch)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == ["1", "2", "3"]
    assert "trial 1" in lines[-1]  # C=0.01 underfits: last
    assert "not registered" in out
    assert list_versions(empty_settings) == []


def test_runs_compare_highlights_the_changed_parameter(
    trained_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = cli(
        ["runs", "compare", "champion", "@challenger", "--json"], capsys, monkeypatch
    )
    assert code == 0, err
    report = json.loads(out)
    assert [r["label"] for r in report["runs"]] == ["v1", "v2"]
    assert report["params"]["model.params.C"] == [None, "0.3"]
    assert "model.params.C" in report["different"]
    assert "seed" not in report["different"]
    assert "data.sha256" not in report["different"]
    assert report["params"]["gate"] == ["passed", "passed"]
    run_id = report["runs"][0]["run_id"]
    code, out, _ = cli(["runs", "compare", run_id, "2"], capsys, monkeypatch)
    assert code == 0
    changed = next(line for line in out.splitlines() if "model.params.C" in line)
    assert "0.3" in changed
    assert "≠" in changed


def test_exported_onnx_predicts_like_the_registered_model_under_plain_onnxruntime(
    trained_settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "model.onnx"
    code, out, err = cli(
        ["export", "2", "--format", "onnx", "--output", str(target)], capsys, monkeypatch
    )
    assert code == 0, err
    assert "input   input: float32 [N, 4]" in out
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type, i.shape[1]) for i in session.get_inputs()] == [
        ("input", "tensor(float)", 4)
    ]
    assert [(o.name, o.type) for o in session.get_outputs()] == [
        ("label", "tensor(int64)"),
        ("probabilities", "tensor(float)"),
    ]
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["petalops.classes"]) == ["setosa", "versicolor", "virginica"]
    assert meta["petalops.version"] == "2"

    x = iris_frame().drop(columns=["species"]).to_numpy()
    labels, proba = session.run(None, {"input": x.astype(np.float32)})
    runtime = load_runtime(trained_settings, "iris/2")
    assert labels.tolist() == runtime.predict(x).tolist()
    np.testing.assert_allclose(proba, runtime.predict_proba(x), atol=1e-5)


def test_gate_model_tests_reject_a_broken_model_and_register_nothing(
    empty_settings: Settings,
) -> None:
    # Deliberately broken: versicolor weighs almost nothing, so it is never predicted.
    broken = empty_settings.model_copy(deep=True)
    broken.model.params = {"max_iter": 200, "class_weight": {0: 1.0, 1: 1e-4, 2: 1.0}}
    broken.gate.min_accuracy = 0.5  # accuracy alone (≈0.67) would let it through
    with pytest.raises(GateFailedError) as failed:
        train(broken)
    message = failed.value.message
    assert "nothing registered" in message
    assert "min_class_recall: classes below recall 0.5: {'versicolor': 0.0}" in message
    assert "known_examples: [7.0, 3.2, 4.7, 1.4] -> virginica (expected versicolor)" in message
    assert "min_accuracy" not in message
    assert list_versions(empty_settings) == []
    logged = find_runs(empty_settings, "tags.`petalops.gate` = 'failed'")
    assert len(logged) == 1


def test_registry_show_prints_the_lineage(
    trained_settings: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from petalops.rollout.store import RolloutStore

    set_alias(trained_settings, "champion", "2", actor="alice@laptop")
    rollouts = RolloutStore(trained_settings.monitor_url)
    rollouts.record(
        model_name="iris",
        rollout_id="r-test-1",
        strategy="canary",
        phase="step",
        step=1,
        weight=25.0,
        action="promote",
        verdict="pass",
        reason="all thresholds met",
        champion_version="1",
        challenger_version="2",
        actor="test",
    )
    rollouts.close()

    details = version_details(trained_settings, "2")
    assert details["promoted_by"] == "alice@laptop"
    assert details["promoted_at"].endswith("Z")
    assert list(details["alias_history"].values())[-1] == "@champion by alice@laptop"
    assert details["data_snapshot"] == f"sklearn:iris?scikit-learn={sklearn.__version__}"
    assert details["gate_checks"]["known_examples"].startswith("pass")
    assert {"min_accuracy", "min_class_recall", "scale_tolerance"} <= set(details["gate_checks"])
    assert "canary as challenger" in details["rollouts"]["r-test-1"]
    assert "canary as champion" in version_details(trained_settings, "1")["rollouts"]["r-test-1"]

    code, out, err = cli(["registry", "show", "champion"], capsys, monkeypatch)
    assert code == 0, err
    for needle in ("alice@laptop", "r-test-1", "gate_checks", "known_examples"):
        assert needle in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tune", "--param", "D=1,2"], "LogisticRegression has no parameter 'D'"),
        (["tune", "--param", "C"], "is not NAME=V1,V2"),
        (["tune", "--param", "C=-1,1"], "rejected by sklearn.linear_model.LogisticRegression"),
        (["tune", "--metric", "auc"], "metric 'auc' is not supported"),
        (["tune", "--cv", "1"], "--cv 1 is too small"),
        (["export", "1", "--format", "tflite"], "format 'tflite' is not supported"),
        (["export", "1", "--output", "missing/model.onnx"], "directory missing does not exist"),
        (["export", "9"], "has no version 9"),
        (["runs", "compare", "1"], "give at least two runs"),
        (["runs", "compare", "1", "nope"], "'nope' is not a run id"),
        (["runs", "compare", "1", "0" * 32], "does not exist"),
        (["reproduce", "99"], "has no version 99"),
        (["ui", "--port", "0"], "--port 0 is not a TCP port"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    trained_settings: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    code, _, err = cli(args, capsys, monkeypatch)
    assert code == 2, err
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
