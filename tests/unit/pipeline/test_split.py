"""The split step: held-out rows chosen by the seed, stratified by default."""

from __future__ import annotations

import numpy as np

from petalops.config import DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.pipeline.split import split, split_indices

DATA = load_dataset(DataSettings())


def test_the_same_seed_gives_the_same_rows_and_another_seed_others() -> None:
    a_train, a_test = split_indices(Settings(seed=1), DATA.y)  # type: ignore[call-arg]
    b_train, b_test = split_indices(Settings(seed=1), DATA.y)  # type: ignore[call-arg]
    c_train, _ = split_indices(Settings(seed=2), DATA.y)  # type: ignore[call-arg]
    assert a_train.tolist() == b_train.tolist() and a_test.tolist() == b_test.tolist()
    assert a_train.tolist() != c_train.tolist()
    assert sorted([*a_train, *a_test]) == list(range(len(DATA.y)))


def test_the_test_share_and_the_class_balance_are_kept() -> None:
    settings = Settings(split={"test_size": 0.2})  # type: ignore[arg-type]
    rows = split(settings, DATA)
    assert len(rows.y_test) == 30 and len(rows.y_train) == 120
    assert np.bincount(rows.y_test).tolist() == [10, 10, 10]


def test_the_rows_are_the_dataset_rows_at_the_indices() -> None:
    settings = Settings()
    train_idx, test_idx = split_indices(settings, DATA.y)
    rows = split(settings, DATA)
    assert np.array_equal(rows.x_train, DATA.x[train_idx])
    assert np.array_equal(rows.y_test, DATA.y[test_idx])


def test_without_stratification_the_balance_may_move() -> None:
    settings = Settings(split={"test_size": 0.2, "stratify": False}, seed=0)  # type: ignore[arg-type]
    rows = split(settings, DATA)
    assert len(rows.y_test) == 30
    assert np.bincount(rows.y_test, minlength=3).tolist() != [10, 10, 10]
