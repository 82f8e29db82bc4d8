"""The prediction record and its one conversion to a ``predictions`` row."""

from __future__ import annotations

import numpy as np
import pytest

from petalops.monitoring.record import INSERT_COLUMNS, PredictionRecord, to_row, to_values


def test_a_full_record_becomes_its_row() -> None:
    record: PredictionRecord = {
        "request_id": "r1",
        "row": 2,
        "ts": 1.7e9,
        "model_name": "iris",
        "model_version": "3",
        "variant": "challenger",
        "route": "/v1/predict",
        "status": 200,
        "latency_ms": 1.25,
        "features": [5.1, 3.5, 1.4, 0.2],
        "prediction": 1,
        "class_name": "versicolor",
        "probabilities": [0.1, 0.8, 0.1],
        "reference_prediction": 0,
    }
    row = to_row(record, now=0.0)
    assert list(row) == list(INSERT_COLUMNS)
    assert row["features"] == "[5.1,3.5,1.4,0.2]"
    assert row["probabilities"] == "[0.1,0.8,0.1]"
    assert (row["row"], row["ts"], row["variant"], row["reference_prediction"]) == (
        2,
        1.7e9,
        "challenger",
        0,
    )
    assert (row["label"], row["label_ts"]) == (None, None)


def test_missing_keys_get_the_defaults_and_numpy_is_serialised() -> None:
    values = to_row({"features": np.arange(3.0)}, now=42.0)
    assert values["ts"] == 42.0
    assert (values["request_id"], values["row"], values["variant"], values["status"]) == (
        "",
        0,
        "champion",
        200,
    )
    assert values["features"] == "[0.0,1.0,2.0]"
    assert to_values({"features": "[1.0]"}, now=0.0)[INSERT_COLUMNS.index("features")] == "[1.0]"


@pytest.mark.parametrize("bad", [{"status": "not a status"}, {"row": "x"}, {"features": object()}])
def test_a_record_that_cannot_be_a_row_raises(bad: dict[str, object]) -> None:
    with pytest.raises((TypeError, ValueError)):
        to_values(bad, now=0.0)
