"""Edge validation in plain Python, and the two predict paths agreeing."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from petalops.runtime.model import open_bundle
from petalops.serving.http import HttpError
from petalops.serving.rows import NUMPY_ROWS, check_row, check_rows, predict_rows, row_from_mapping

FEATURES = ["a", "b"]


@pytest.mark.parametrize(
    ("value", "field", "says"),
    [
        ([1.0], "x", "must have 2 numbers, got 1"),
        ([1.0, math.nan], "x[1]", "finite"),
        ([1.0, math.inf], "x[1]", "finite"),
        ([1.0, True], "x[1]", "a boolean"),
        ([1.0, "2"], "x[1]", "the string '2'"),
        ([1.0, None], "x[1]", "null"),
        ([1.0, [2.0]], "x[1]", "a nested array"),
        ({"a": 1}, "x", "an object"),
    ],
)
def test_check_row_refuses(value: object, field: str, says: str) -> None:
    with pytest.raises(HttpError) as caught:
        check_row(value, 2, "x", {"x": [1, 2]})
    assert caught.value.status == 400
    assert caught.value.field == field
    assert says in caught.value.message
    assert caught.value.example == {"x": [1, 2]}


@pytest.mark.parametrize(
    ("rows", "field", "says"),
    [
        ([[1.0, 2.0], [1.0]], "rows[1]", "rows[1] must have 2 numbers, got 1"),
        ([[1.0, 2.0], {"a": 1}], "rows[1]", "rows[1] must be an array of 2 numbers"),
        ([[1.0, 2.0], [1.0, 2.0], [1.0, math.nan]], "rows[2][1]", "rows[2][1] must be finite"),
        ([[1.0, 2.0], [None, 2.0]], "rows[1][0]", "rows[1][0] must be a number"),
    ],
)
def test_check_rows_names_the_row_and_value(rows: list[object], field: str, says: str) -> None:
    with pytest.raises(HttpError) as caught:
        check_rows(rows, 2, 10, "rows", None)
    assert caught.value.field == field
    assert caught.value.message.startswith(says)


def test_check_row_accepts_ints_as_floats() -> None:
    row = check_row([1, 2.5], 2, "x", None)
    assert row == [1.0, 2.5]
    assert all(type(v) is float for v in row)


def test_check_rows_limits() -> None:
    with pytest.raises(HttpError, match="is empty"):
        check_rows([], 2, 5, "rows", None)
    with pytest.raises(HttpError, match="limit of 5"):
        check_rows([[1, 2]] * 6, 2, 5, "rows", None)
    assert check_rows([[1, 2]] * 5, 2, 5, "rows", None) == [[1.0, 2.0]] * 5


def test_row_from_mapping() -> None:
    assert row_from_mapping({"b": 2, "a": 1}, FEATURES, "", None) == [1.0, 2.0]
    with pytest.raises(HttpError) as missing:
        row_from_mapping({"a": 1}, FEATURES, "rows[3]", None)
    assert missing.value.field == "rows[3].b"
    with pytest.raises(HttpError) as extra:
        row_from_mapping({"a": 1, "b": 2, "c": 3}, FEATURES, "", None)
    assert extra.value.field == "c"


def test_python_and_numpy_paths_agree(bundle_dirs: dict[str, tuple[Path, str]]) -> None:
    directory, digest = bundle_dirs["1"]
    runtime = open_bundle(directory, "iris", "1", digest)
    rng = np.random.default_rng(0)
    rows = rng.uniform([4, 2, 1, 0], [8, 4.5, 7, 2.5], size=(NUMPY_ROWS * 2, 4)).tolist()
    small_labels, small_probas = [], []
    for row in rows:
        labels, probas = predict_rows(runtime, [row])
        small_labels += labels
        small_probas += probas
    big_labels, big_probas = predict_rows(runtime, rows)
    assert big_labels == small_labels
    assert np.allclose(big_probas, small_probas, atol=1e-12)
