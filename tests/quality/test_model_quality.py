"""Model behaviour of the shipped default (Iris, LogisticRegression): what users rely on."""

from __future__ import annotations

import numpy as np
import pytest

from petalops.config import Settings
from petalops.data.load import load_dataset
from petalops.registry import load_runtime
from petalops.runtime.model import ModelRuntime


@pytest.fixture
def champion(trained_settings: Settings) -> ModelRuntime:
    return load_runtime(trained_settings)


def test_accuracy_floor_on_held_out_data(trained_settings: Settings) -> None:
    from petalops.registry.store import get_run, get_version

    run = get_run(trained_settings, get_version(trained_settings, "1").run_id)
    assert run.metrics["accuracy"] >= 0.93
    assert min(v for k, v in run.metrics.items() if k.startswith("recall_")) >= 0.85


@pytest.mark.parametrize(
    ("row", "species"),
    [
        ([5.1, 3.5, 1.4, 0.2], "setosa"),
        ([4.9, 3.0, 1.4, 0.2], "setosa"),
        ([7.0, 3.2, 4.7, 1.4], "versicolor"),
        ([5.7, 2.8, 4.1, 1.3], "versicolor"),
        ([6.3, 3.3, 6.0, 2.5], "virginica"),
        ([5.9, 3.0, 5.1, 1.8], "virginica"),
    ],
)
def test_known_examples_per_class(champion: ModelRuntime, row: list[float], species: str) -> None:
    index, proba = champion.predict_one(row)
    assert champion.classes[index] == species
    assert abs(sum(proba) - 1) < 1e-9


def test_predictions_do_not_depend_on_row_order(champion: ModelRuntime) -> None:
    x = load_dataset(Settings().data).x
    order = np.random.default_rng(0).permutation(len(x))
    assert (champion.predict(x[order]) == champion.predict(x)[order]).all()


def test_whole_set_accuracy(champion: ModelRuntime) -> None:
    data = load_dataset(Settings().data)
    assert (champion.predict(data.x) == data.y).mean() >= 0.95
