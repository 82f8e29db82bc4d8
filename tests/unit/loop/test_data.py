"""The retraining data: the training set plus the labelled live rows, one CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from petalops.config import IRIS_FEATURES, Settings
from petalops.errors import PetalopsError
from petalops.loop.data import retraining_data
from petalops.monitoring.store import MonitorStore


def _labelled(store: MonitorStore, rows: list[tuple[list[float], int]]) -> None:
    store.log_predictions(
        {
            "request_id": f"l{i}",
            "model_name": "iris",
            "model_version": "1",
            "features": features,
            "prediction": 0,
            "label": label,
        }
        for i, (features, label) in enumerate(rows)
    )


def test_training_rows_come_first_then_the_labelled_live_rows(
    empty_settings: Settings, tmp_path: Path
) -> None:
    store = MonitorStore.from_settings(empty_settings)
    _labelled(store, [([7.0, 3.2, 6.0, 2.1], 2), ([5.0, 3.4, 1.5, 0.2], 0)])
    path = tmp_path / "retrain" / "c-1.csv"
    assert retraining_data(empty_settings, store, path) == (150, 2)
    frame = pd.read_csv(path)
    assert list(frame.columns) == [*IRIS_FEATURES, "species"]
    assert len(frame) == 152
    assert frame.iloc[-2:]["species"].tolist() == ["virginica", "setosa"]
    assert frame.iloc[-2].tolist()[:4] == [7.0, 3.2, 6.0, 2.1]
    store.close()


def test_a_label_outside_the_classes_is_left_out(empty_settings: Settings, tmp_path: Path) -> None:
    store = MonitorStore.from_settings(empty_settings)
    _labelled(store, [([6.1, 2.8, 4.7, 1.2], 1), ([6.3, 2.5, 5.0, 1.9], 7)])
    assert retraining_data(empty_settings, store, tmp_path / "r.csv") == (150, 1)
    assert pd.read_csv(tmp_path / "r.csv")["species"].iloc[-1] == "versicolor"
    store.close()


def test_live_rows_with_another_schema_are_refused(
    empty_settings: Settings, tmp_path: Path
) -> None:
    store = MonitorStore.from_settings(empty_settings)
    _labelled(store, [([6.1, 2.8, 4.7], 1)])
    with pytest.raises(PetalopsError, match="labelled live rows have 3 features"):
        retraining_data(empty_settings, store, tmp_path / "r.csv")
    assert not (tmp_path / "r.csv").exists()
    store.close()
