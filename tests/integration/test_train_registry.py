"""Training into a real MLflow store: registration, aliases, the gate, reproducibility."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from petalops.config import DataSettings, Settings
from petalops.data.load import iris_frame
from petalops.errors import DataError, GateFailedError, IntegrityError
from petalops.pipeline.run import train
from petalops.registry import load_runtime, resolve
from petalops.registry.store import client, list_versions, set_alias

ROW = [5.1, 3.5, 1.4, 0.2]


def test_first_version_is_champion_then_challenger(empty_settings: Settings) -> None:
    first = train(empty_settings)
    assert (first.version, first.alias) == ("1", "champion")
    assert first.metrics["accuracy"] >= 0.9
    second = train(empty_settings.model_copy(update={"seed": 7}))
    assert (second.version, second.alias) == ("2", "challenger")
    assert [v.version for v in list_versions(empty_settings)] == ["2", "1"]
    assert resolve(empty_settings, "iris@challenger").version == "2"


def test_run_records_params_metrics_dataset_and_tags(empty_settings: Settings) -> None:
    result = train(empty_settings)
    run = client(empty_settings).get_run(result.run_id)
    assert run.data.params["model.class"] == "sklearn.linear_model.LogisticRegression"
    assert run.data.params["model.params.max_iter"] == "200"
    assert {"accuracy", "f1_macro", "log_loss", "recall_setosa", "precision_virginica"} <= set(
        run.data.metrics
    )
    assert run.data.tags["petalops.data_sha256"] == result.data_sha256
    assert run.data.tags["petalops.lib.scikit-learn"]
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "iris"
    artifacts = {a.path for a in client(empty_settings).list_artifacts(result.run_id)}
    assert {"confusion_matrix.png", "metrics.json", "config.json", "petalops"} <= artifacts


def test_same_data_and_config_give_identical_results(empty_settings: Settings) -> None:
    a = train(empty_settings, register=False)
    b = train(empty_settings, register=False)
    assert a.metrics == b.metrics
    assert a.fitted == b.fitted
    assert a.fitted["clf.coef_"]
    c = train(empty_settings.model_copy(update={"seed": 3}), register=False)
    assert c.fitted != a.fitted


def test_skip_if_unchanged(empty_settings: Settings) -> None:
    train(empty_settings)
    again = train(empty_settings, skip_if_unchanged=True)
    assert again.skipped and again.version == "1"
    assert len(list_versions(empty_settings)) == 1


def test_failed_gate_registers_nothing(empty_settings: Settings) -> None:
    strict = empty_settings.model_copy(deep=True)
    strict.gate.min_accuracy = 1.0
    with pytest.raises(GateFailedError, match="min_accuracy: accuracy 0.9667 vs floor 1.0000"):
        train(strict)
    assert list_versions(empty_settings) == []


def test_bad_data_logs_and_registers_nothing(empty_settings: Settings, tmp_path: Path) -> None:
    # a missing value is allowed (and imputed) unless data.columns refuses it
    frame = iris_frame()
    frame.loc[3, "petal_width"] = np.nan
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    strict = empty_settings.model_copy(
        update={"data": DataSettings(columns={"petal_width": {"allow_missing": False}})}  # type: ignore[dict-item]
    )
    with pytest.raises(DataError, match="column 'petal_width' has a missing value at row 5"):
        train(strict, path)
    experiment = client(empty_settings).get_experiment_by_name("iris")
    runs = client(empty_settings).search_runs([experiment.experiment_id]) if experiment else []
    assert list(runs) == []
    assert list_versions(empty_settings) == []


def test_stock_mlflow_loads_the_registered_model(trained_settings: Settings) -> None:
    mlflow.set_tracking_uri(trained_settings.tracking_uri)
    mlflow.set_registry_uri(trained_settings.tracking_uri)
    model = mlflow.pyfunc.load_model("models:/iris@champion")
    frame = pd.DataFrame(
        [ROW, [6.7, 3.0, 5.2, 2.3]], columns=load_runtime(trained_settings).features
    )
    stock = np.asarray(model.predict(frame))
    ours = load_runtime(trained_settings).predict(frame.to_numpy())
    assert stock.tolist() == ours.tolist() == [0, 2]


def test_corrupt_artifact_is_refused(trained_settings: Settings) -> None:
    runtime = load_runtime(trained_settings, "iris/1")
    cached = trained_settings.cache_dir / "iris" / "1" / "linear.json"
    assert cached.is_file() and runtime.version == "1"
    cached.write_text(json.dumps({"weights": [[0, 0, 0]] * 4, "bias": [9, 0, 0]}))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        load_runtime(trained_settings, "iris/1")
    # The damaged copy was dropped: the next load fetches a good one again.
    assert load_runtime(trained_settings, "iris/1").predict_one(ROW)[0] == 0


def test_alias_moves_are_seen_by_resolve(trained_settings: Settings) -> None:
    assert resolve(trained_settings).version == "1"
    set_alias(trained_settings, "champion", "2")
    assert resolve(trained_settings).version == "2"
    assert load_runtime(trained_settings).version == "2"


def test_export_writes_tutorial_artifacts(empty_settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "artifacts"
    result = train(empty_settings, export_dir=out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == result.metrics["accuracy"]
    assert {"model.onnx", "manifest.json", "linear.json", "confusion_matrix.png"} <= set(
        result.exported
    )


def test_model_tag_reads_without_mlflow(trained_settings: Settings) -> None:
    from petalops.registry import model_tag
    from petalops.registry.store import set_model_tag

    assert model_tag(trained_settings, "iris", "petalops.traffic") is None
    set_model_tag(trained_settings, "petalops.traffic", '{"strategy": "canary", "weight": 5}')
    assert model_tag(trained_settings, "iris", "petalops.traffic") == (
        '{"strategy": "canary", "weight": 5}'
    )
    assert model_tag(trained_settings, "nope", "petalops.traffic") is None


@pytest.mark.slow
def test_two_trains_started_together_in_a_fresh_folder_both_succeed(tmp_path: Path) -> None:
    home = tmp_path / ".petalops"
    env = {**os.environ, "PETALOPS_HOME": str(home)}
    env.pop("PETALOPS_MLFLOW_URI", None)
    command = [sys.executable, "-m", "petalops", "train", "--set", "seed=7"]
    runs = [
        subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300)[0].decode(errors="replace") for run in runs]
    codes = [run.returncode for run in runs]
    assert codes == [0, 0], outputs
    settings = Settings(home=home)
    versions = list_versions(settings)
    assert sorted(v.version for v in versions) == ["1", "2"]
    aliases = sorted(alias for v in versions for alias in v.aliases)
    assert aliases == ["challenger", "champion"], aliases  # one first train, not two


def test_train_during_a_rollout_leaves_its_challenger_alone(trained_settings: Settings) -> None:
    from petalops.rollout.api import request, start_rollout

    rollout_id = start_rollout(trained_settings, "2", "canary", steps="10,100")
    third = train(trained_settings.model_copy(update={"seed": 11}))
    assert (third.version, third.alias) == ("3", "")
    assert resolve(trained_settings, "iris@challenger").version == "2"
    # Someone points @challenger at v3 by hand mid-rollout; the abort leaves it there.
    set_alias(trained_settings, "challenger", "3")
    answer = request(trained_settings, "abort", "test")
    assert answer["plan"]["rollout_id"] == rollout_id and answer["plan"]["phase"] == "aborted"
    assert resolve(trained_settings, "iris@challenger").version == "3"
    assert resolve(trained_settings, "iris@champion").version == "1"
    fourth = train(trained_settings.model_copy(update={"seed": 13}))
    assert fourth.alias == "challenger"  # the rollout is over: training takes it again
