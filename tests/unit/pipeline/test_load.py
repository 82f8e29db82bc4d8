"""The load step: validated data, the recorded config and the train key."""

from __future__ import annotations

from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.data.load import iris_frame
from petalops.errors import DataError
from petalops.pipeline.identity import train_key, training_config
from petalops.pipeline.load import load

SHA_A, SHA_B = "a" * 64, "b" * 64


def test_the_config_holds_every_section_that_changes_the_model() -> None:
    config = training_config(Settings(seed=7))  # type: ignore[call-arg]
    assert set(config) == {"project", "seed", "data", "model", "split", "gate"}
    assert config["seed"] == 7
    assert config["model"]["class"] == "sklearn.linear_model.LogisticRegression"


def test_the_key_follows_config_and_data_but_not_where_the_data_was_read() -> None:
    config = training_config(Settings())
    moved = {**config, "data": {**config["data"], "source": "/elsewhere/flowers.csv"}}
    assert train_key(config, SHA_A) == train_key(moved, SHA_A)
    assert train_key(config, SHA_A) != train_key(config, SHA_B)
    reseeded = training_config(Settings(seed=1))  # type: ignore[call-arg]
    assert train_key(config, SHA_A) != train_key(reseeded, SHA_A)


def test_load_keys_the_validated_data(tmp_path: Path) -> None:
    path = tmp_path / "flowers.csv"
    iris_frame().to_csv(path, index=False)
    settings = Settings()
    from_file = load(settings, path)
    builtin = load(settings)
    assert from_file.dataset.file_path == path
    assert from_file.sha256 == builtin.sha256  # same values, same hash
    assert from_file.key == train_key(training_config(settings), from_file.sha256)
    assert from_file.key == builtin.key


def test_bad_data_is_a_data_error(tmp_path: Path) -> None:
    frame = iris_frame()
    frame.loc[0, "species"] = None
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError):
        load(Settings(), path)
