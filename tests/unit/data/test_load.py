from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from petalops.config import DataSettings
from petalops.data.load import feature_frame, iris_frame, load_dataset
from petalops.data.schema import ColumnSchema, Schema
from petalops.errors import DataError


@pytest.fixture
def iris_csv(tmp_path: Path) -> Path:
    path = tmp_path / "iris.csv"
    iris_frame().to_csv(path, index=False)
    return path


def test_bundled_iris_loads_validated() -> None:
    data = load_dataset(DataSettings())
    assert data.x.shape == (150, 4)
    assert data.classes == ["setosa", "versicolor", "virginica"]
    assert np.bincount(data.y).tolist() == [50, 50, 50]
    assert data.fingerprint.rows == 150
    assert Path(data.source_path).name == "iris.csv"


def test_fingerprint_is_about_content_not_format(iris_csv: Path, tmp_path: Path) -> None:
    parquet = tmp_path / "iris.parquet"
    frame = pd.read_csv(iris_csv)
    frame["species"] = frame["species"].map({"setosa": 0, "versicolor": 1, "virginica": 2})
    frame.to_parquet(parquet)
    a = load_dataset(DataSettings(), iris_csv).fingerprint
    b = load_dataset(DataSettings(), parquet).fingerprint
    assert a == b == load_dataset(DataSettings()).fingerprint
    frame.loc[0, "sepal_length"] = 5.0
    frame.to_parquet(parquet)
    assert load_dataset(DataSettings(), parquet).fingerprint.sha256 != a.sha256


def _broken(iris_csv: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    frame = pd.read_csv(iris_csv)
    frame = edit(frame)
    frame.to_csv(iris_csv, index=False)
    return iris_csv


def _set(column: str, row: int, value: object):  # type: ignore[no-untyped-def]
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
        return frame

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns=["petal_width"]), "column 'petal_width' is missing"),
        (
            _set("sepal_width", 4, "abc"),
            "column 'sepal_width' has a non-numeric value 'abc' at row 6",
        ),
        (_set("petal_length", 9, np.inf), "column 'petal_length' has an infinite value at row 11"),
        (_set("species", 3, "rose"), "label 'rose' in column 'species' at row 5"),
        (lambda f: f.iloc[:53], "class 'versicolor' has 3 row(s); each class needs at least 5"),
        (lambda f: f.drop(columns=["species"]), "column 'species' is missing"),
    ],
)
def test_each_bad_input_gets_one_clear_line(iris_csv: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DataError) as info:
        load_dataset(DataSettings(), _broken(iris_csv, edit))
    assert message in info.value.message
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("sepal_length,species\n", "has no data rows")],
)
def test_empty_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_dataset(DataSettings(), path)


def test_missing_file_and_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataSettings(), tmp_path / "nope.csv")
    other = tmp_path / "data.json"
    other.write_text("{}")
    with pytest.raises(DataError, match=r"must end in \.csv or \.parquet"):
        load_dataset(DataSettings(), other)


def test_inferred_schema_for_other_projects(tmp_path: Path) -> None:
    path = tmp_path / "wine.csv"
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30)})
    frame["label"] = ["red", "white", "rose"] * 10
    frame.to_csv(path, index=False)
    data = load_dataset(DataSettings(target="label", features=None, classes=None), path)
    assert data.features == ["a", "b"]
    assert data.classes == ["red", "rose", "white"]


def test_missing_values_are_allowed_unless_a_column_refuses_them(iris_csv: Path) -> None:
    path = _broken(iris_csv, _set("petal_length", 7, np.nan))
    data = load_dataset(DataSettings(), path)
    assert np.isnan(data.x[7, 2])
    assert data.schema.column("petal_length").missing == 1
    strict = DataSettings(columns={"petal_length": {"allow_missing": False}})  # type: ignore[dict-item]
    with pytest.raises(DataError) as info:
        load_dataset(strict, path)
    assert info.value.message == (
        "column 'petal_length' has a missing value at row 9 (counting the header as row 1); "
        "fill it in, or allow it with data.columns.petal_length.allow_missing=true"
    )


def test_a_missing_category_is_nan_whether_it_came_as_nan_or_none() -> None:
    # scikit-learn's imputers count only NaN as missing: a None left in the frame would be
    # fitted as a category of its own while the server imputes it.
    schema = Schema(
        columns=(ColumnSchema("island", "categorical"), ColumnSchema("mass", "numeric"))
    )
    x = np.array([["Biscoe", 1.0], [None, 2.0], [np.nan, None]], dtype=object)
    frame = feature_frame(x, schema)
    assert frame["island"].iloc[0] == "Biscoe"
    assert all(isinstance(v, float) and np.isnan(v) for v in frame["island"].iloc[1:])
    assert np.isnan(frame["mass"].iloc[2])
