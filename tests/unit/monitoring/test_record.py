"""The prediction record and its one conversion to a ``predictions`` row."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from petalops.monitoring.record import (
    ANSWER_LINE,
    INSERT_COLUMNS,
    PredictionRecord,
    answer_values,
    to_row,
    to_values,
)


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


def _line(
    rows: list[Any], labels: list[Any], names: list[Any], probas: list[Any], reference: Any
) -> list[Any]:
    return [ANSWER_LINE, "r9", 1.7e9, "iris", 4, "champion", "/predict", 200, 0.5, rows, labels,
            names, probas, reference]  # fmt: skip


@pytest.mark.parametrize("reference", [None, [2]])
def test_a_one_row_answer_line_is_the_row_a_record_makes(reference: list[int] | None) -> None:
    line = _line([[5.1, 3.5, 1.4, 0.2]], [1], ["versicolor"], [[0.1, 0.8, 0.1]], reference)
    record: PredictionRecord = {
        "request_id": "r9", "row": 0, "ts": 1.7e9, "model_name": "iris", "model_version": "4",
        "variant": "champion", "route": "/predict", "status": 200, "latency_ms": 0.5,
        "features": [5.1, 3.5, 1.4, 0.2], "prediction": 1, "class_name": "versicolor",
        "probabilities": [0.1, 0.8, 0.1],
        "reference_prediction": None if reference is None else reference[0],
    }  # fmt: skip
    (values,) = answer_values(line, now=0.0)
    # The row stops before the columns an answer never has (NULL in the store).
    assert len(values) == INSERT_COLUMNS.index("label" if reference else "reference_prediction")
    full = to_values(record, now=0.0)
    assert values == full[: len(values)]
    assert set(full[len(values) :]) == {None}


def test_a_many_row_answer_line_numbers_its_rows() -> None:
    line = _line([[1.0], [2.0]], [0, 1], ["a", "b"], [[1.0, 0.0], [0.0, 1.0]], None)
    values = answer_values(line, now=3.0)
    at = INSERT_COLUMNS.index
    assert [(v[at("row")], v[at("features")], v[at("class_name")]) for v in values] == [
        (0, "[1.0]", "a"),
        (1, "[2.0]", "b"),
    ]


def test_a_many_row_answer_line_with_a_reference_gives_each_row_its_own() -> None:
    line = _line([[1.0], [2.0]], [0, 1], ["a", "b"], [[1.0, 0.0], [0.0, 1.0]], [1, 0])
    values = answer_values(line, now=3.0)
    at = INSERT_COLUMNS.index
    assert {len(v) for v in values} == {at("label")}
    assert [(v[at("row")], v[at("reference_prediction")]) for v in values] == [(0, 1), (1, 0)]


@pytest.mark.parametrize(
    "parts",
    [
        ([[1.0]], [0, 1], ["a"], [[1.0]], None),  # one row, two labels
        ([[1.0]], [0], [], [[1.0]], None),  # one row, no class name
        ([[1.0]], [0], ["a"], [[1.0]], [0, 1]),  # one row, two references
        ([[1.0], [2.0]], [0], ["a", "b"], [[1.0], [1.0]], None),  # two rows, one label
        ([[1.0], [2.0]], [0, 1], ["a", "b"], [[1.0], [1.0]], [0]),  # two rows, one reference
    ],
)
def test_an_answer_line_whose_lists_differ_in_length_raises(parts: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match="differ in length|zip"):
        answer_values(_line(*parts), now=0.0)
