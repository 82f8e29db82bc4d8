"""Restoring a recorded run's training data: only the exact bytes that were hashed."""

from __future__ import annotations

from pathlib import Path

import pytest

from petalops.config import DataSettings, Settings
from petalops.data.load import iris_frame, load_dataset
from petalops.errors import DataError, NotFoundError
from petalops.experiments.restore import materialize
from petalops.pipeline.snapshot import builtin_uri, cache_path

IRIS_SHA = load_dataset(DataSettings()).fingerprint.sha256


def test_the_bundled_iris_set_needs_no_file() -> None:
    assert materialize(Settings(), builtin_uri(), IRIS_SHA, DataSettings()) is None


def test_the_bundled_iris_set_must_hash_as_recorded() -> None:
    with pytest.raises(DataError, match="install the recorded scikit-learn version"):
        materialize(Settings(), builtin_uri(), "0" * 64, DataSettings())


def test_an_old_versions_original_file_is_used_while_it_still_matches(tmp_path: Path) -> None:
    path = tmp_path / "flowers.csv"
    iris_frame().to_csv(path, index=False)
    assert materialize(Settings(), f"file:{path}", IRIS_SHA, DataSettings()) == path
    iris_frame().iloc[10:].to_csv(path, index=False)  # edited since
    with pytest.raises(DataError, match="no longer holds the recorded data"):
        materialize(Settings(), f"file:{path}", IRIS_SHA, DataSettings())


def test_without_a_snapshot_nothing_can_be_restored() -> None:
    with pytest.raises(NotFoundError, match="no data snapshot recorded"):
        materialize(Settings(), "", IRIS_SHA, DataSettings())


def test_a_cached_copy_that_still_hashes_right_is_used(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / ".petalops")  # type: ignore[arg-type]
    cached = cache_path(settings, IRIS_SHA)
    cached.parent.mkdir(parents=True)
    iris_frame().to_parquet(cached, index=False)
    uri = "runs:/" + "a" * 32 + "/data/snapshot.parquet"  # never read: the cache answers
    assert materialize(settings, uri, IRIS_SHA, DataSettings()) == cached
