"""The snapshot step: a file's exact data is stored once per content hash; Iris by version."""

from __future__ import annotations

from pathlib import Path

import sklearn

from petalops.config import Settings
from petalops.data.load import Dataset, iris_frame, load_dataset
from petalops.pipeline.snapshot import (
    SNAPSHOT_TAG,
    SnapshotRecord,
    builtin_uri,
    cache_path,
    find_snapshot_uri,
    record_snapshot,
)
from petalops.registry import store


def _file_dataset(settings: Settings, tmp_path: Path, name: str) -> Dataset:
    path = tmp_path / name
    iris_frame().to_csv(path, index=False)
    return load_dataset(settings.data, path)


def _record(settings: Settings, dataset: Dataset) -> tuple[str, SnapshotRecord]:
    """As the track step does it: inside a run already tagged with the data hash."""
    with store.tracked_run(settings) as run_id:
        store.log_run_data({}, {}, {"petalops.data_sha256": dataset.fingerprint.sha256})
        return run_id, record_snapshot(settings, dataset, run_id)


def test_a_file_is_uploaded_once_and_later_runs_point_at_it(
    empty_settings: Settings, tmp_path: Path
) -> None:
    first_run, first = _record(empty_settings, _file_dataset(empty_settings, tmp_path, "a.csv"))
    assert (first.kind, first.reused) == ("file", False)
    assert first.uri == f"runs:/{first_run}/data/snapshot.parquet"
    assert cache_path(empty_settings, first.sha256).is_file()

    moved = _file_dataset(empty_settings, tmp_path, "b.csv")  # same rows, another file
    second_run, second = _record(empty_settings, moved)
    assert (second.uri, second.reused) == (first.uri, True)
    assert find_snapshot_uri(empty_settings, first.sha256) == first.uri

    tags = store.get_run(empty_settings, second_run).tags
    assert tags[SNAPSHOT_TAG] == first.uri
    assert tags["petalops.data_rows"] == "150"
    record = store.read_run_json(empty_settings, second_run, "data/snapshot.json")
    assert record == second.to_json()


def test_the_bundled_iris_set_is_recorded_by_the_scikit_learn_version(
    empty_settings: Settings,
) -> None:
    run_id, record = _record(empty_settings, load_dataset(empty_settings.data))
    assert record.kind == "builtin"
    assert record.uri == builtin_uri() == f"sklearn:iris?scikit-learn={sklearn.__version__}"
    assert store.get_run(empty_settings, run_id).tags[SNAPSHOT_TAG] == record.uri
    assert find_snapshot_uri(empty_settings, record.sha256) is None  # nothing was uploaded
