"""Live accuracy and macro-F1 over a sliding window, per version and variant."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from petalops.monitoring.quality import accuracy, live_quality, macro_f1
from petalops.monitoring.store import MonitorStore


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, 200)
    predicted = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 3, 200))
    assert accuracy(predicted, labels) == pytest.approx(accuracy_score(labels, predicted))
    assert macro_f1(predicted, labels) == pytest.approx(
        f1_score(labels, predicted, average="macro")
    )


def test_macro_f1_with_a_class_never_predicted() -> None:
    labels = np.asarray([0, 1, 2, 2])
    predicted = np.asarray([0, 1, 1, 1])
    assert macro_f1(predicted, labels) == pytest.approx(
        f1_score(labels, predicted, average="macro", zero_division=0)
    )


def test_live_quality_per_version_and_variant_over_the_newest_window(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    now = time.time()
    records = []
    # v1 champion: 20 old wrong answers, then 10 newer right ones.
    for i in range(30):
        records.append(
            make_record(f"c{i}", ts=now - 100 + i, prediction=0, label=1 if i < 20 else 0)
        )
    # v2 challenger: 10 labelled, 8 right.
    for i in range(10):
        records.append(
            make_record(
                f"k{i}",
                ts=now - 50 + i,
                model_version="2",
                variant="challenger",
                prediction=2,
                label=2 if i < 8 else 1,
            )
        )
    records.append(make_record("unlabelled", ts=now))
    store.log_predictions(records)

    rows = {(r.model_version, r.variant): r for r in live_quality(store, "iris", 10)}
    assert set(rows) == {("1", "champion"), ("2", "challenger")}
    assert rows[("1", "champion")].accuracy == 1.0  # only the newest 10 count
    assert rows[("1", "champion")].labelled == 10
    assert rows[("2", "challenger")].accuracy == pytest.approx(0.8)
    wide = {(r.model_version, r.variant): r for r in live_quality(store, "iris", 1000)}
    assert wide[("1", "champion")].accuracy == pytest.approx(10 / 30)
