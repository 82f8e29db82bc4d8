"""`train` as a chain of steps: the names `on_step` hears, and the step a failure names."""

from __future__ import annotations

from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.data.load import iris_frame
from petalops.errors import GateFailedError, PetalopsError
from petalops.pipeline.run import STEP_NOTE, STEPS, train
from petalops.registry.store import client, list_versions


def _runs(settings: Settings) -> list[object]:
    experiment = client(settings).get_experiment_by_name(settings.experiment_name)
    return list(client(settings).search_runs([experiment.experiment_id])) if experiment else []


def test_a_registered_run_reports_every_step_in_order(empty_settings: Settings) -> None:
    heard: list[str] = []
    result = train(empty_settings, on_step=heard.append)
    assert heard == list(STEPS)
    assert (result.version, result.alias) == ("1", "champion")

    again: list[str] = []
    skipped = train(empty_settings, skip_if_unchanged=True, on_step=again.append)
    assert again == ["load"]
    assert skipped.skipped and skipped.version == "1"


def test_without_registering_the_register_step_never_runs(empty_settings: Settings) -> None:
    heard: list[str] = []
    result = train(empty_settings, register=False, on_step=heard.append)
    assert heard == [s for s in STEPS if s != "register"]
    assert result.version is None and result.run_id
    assert list_versions(empty_settings) == []


def test_a_failed_gate_is_tracked_and_not_registered(empty_settings: Settings) -> None:
    strict = empty_settings.model_copy(deep=True)
    strict.gate.min_accuracy = 1.0
    heard: list[str] = []
    with pytest.raises(GateFailedError, match="min_accuracy"):
        train(strict, on_step=heard.append)
    assert heard[-1] == "track"
    [run] = _runs(empty_settings)
    assert run.data.tags["petalops.gate"] == "failed"  # type: ignore[attr-defined]
    assert list_versions(empty_settings) == []


def test_a_fit_failure_names_the_step_and_logs_nothing(empty_settings: Settings) -> None:
    bad = empty_settings.model_copy(deep=True)
    bad.model.params = {"C": -1.0}
    heard: list[str] = []
    with pytest.raises(PetalopsError, match="rejected by") as caught:
        train(bad, on_step=heard.append)
    assert caught.value.__notes__ == [f"{STEP_NOTE}'fit'"]
    assert heard == ["load", "split", "fit"]
    assert _runs(empty_settings) == []


def test_a_data_failure_names_the_load_step(empty_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(PetalopsError, match="does not exist") as caught:
        train(empty_settings, tmp_path / "missing.csv")
    assert caught.value.__notes__ == [f"{STEP_NOTE}'load'"]


def test_a_snapshot_failure_names_the_innermost_step(
    empty_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "flowers.csv"
    iris_frame().to_csv(path, index=False)
    (empty_settings.home_dir / "snapshots").write_text("not a directory")
    with pytest.raises(FileExistsError) as caught:
        train(empty_settings, path)
    assert caught.value.__notes__ == [f"{STEP_NOTE}'snapshot'"]
    assert list_versions(empty_settings) == []


def test_an_export_failure_names_the_export_step(empty_settings: Settings, tmp_path: Path) -> None:
    target = tmp_path / "artifacts"
    target.write_text("a file where the directory should be")
    with pytest.raises(FileExistsError) as caught:
        train(empty_settings, export_dir=target)
    assert caught.value.__notes__ == [f"{STEP_NOTE}'export'"]


def test_skip_if_unchanged_finds_a_version_by_the_bytes_of_its_file(
    trained_settings: Settings, tmp_path: Path
) -> None:
    from petalops.pipeline.identity import SOURCE_KEY_TAG, source_key
    from petalops.registry import resolve
    from petalops.registry.store import set_version_tag

    # v1 was trained on the Iris CSV inside scikit-learn: its bytes are its source key.
    v1 = resolve(trained_settings, "iris/1")
    assert v1.tags[SOURCE_KEY_TAG] == source_key(trained_settings)
    # A version trained before source keys: found by content, then tagged for next time.
    set_version_tag(trained_settings, "1", SOURCE_KEY_TAG, "")
    heard: list[str] = []
    skipped = train(trained_settings, skip_if_unchanged=True, on_step=heard.append)
    assert (skipped.skipped, skipped.version, heard) == (True, "1", ["load"])
    assert skipped.train_key == v1.tags["petalops.train_key"]
    assert resolve(trained_settings, "iris/1").tags[SOURCE_KEY_TAG] == v1.tags[SOURCE_KEY_TAG]
    # Other bytes, or another config, give another key.
    path = tmp_path / "iris.csv"
    iris_frame().to_csv(path, index=False)
    assert source_key(trained_settings, path) not in (None, v1.tags[SOURCE_KEY_TAG])
    other = trained_settings.model_copy(update={"seed": 7})
    assert source_key(other) != v1.tags[SOURCE_KEY_TAG]
    assert source_key(trained_settings, tmp_path / "missing.csv") is None
