import numpy as np
import pandas as pd
import pytest

from petalops.config import ColumnSettings
from petalops.data.validate import kind_of, validate_frame
from petalops.errors import DataError


def _mixed(rows: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "length": rng.normal(40, 5, rows),
            "island": rng.choice(["Biscoe", "Dream", "Torgersen"], rows),
            "tagged": rng.choice(["true", "false"], rows),
            "zone": rng.choice([3, 7, 11], rows),
            "label": ["a", "b", "c"] * (rows // 3),
        }
    )
    frame.loc[2, "length"] = np.nan
    frame.loc[4, "island"] = None
    return frame


def _validate(frame: pd.DataFrame, **columns: ColumnSettings):  # type: ignore[no-untyped-def]
    features = [c for c in frame.columns if c != "label"]
    return validate_frame(frame, features, "label", 2, None, columns)


def test_kinds_are_inferred_and_values_made_canonical() -> None:
    clean, classes, schema = _validate(_mixed(), zone=ColumnSettings(kind="categorical"))
    assert classes == ["a", "b", "c"]
    assert [c.kind for c in schema.columns] == ["numeric", "categorical", "boolean", "categorical"]
    assert clean["length"].dtype == np.float64 and np.isnan(clean["length"][2])
    assert set(clean["tagged"].unique()) <= {0.0, 1.0}
    assert set(clean["zone"].unique()) <= {"3", "7", "11"}
    assert pd.isna(clean["island"][4])
    island = schema.column("island")
    assert island.missing == 1
    assert sum(island.categories.values()) == 29
    assert list(island.categories.values()) == sorted(island.categories.values(), reverse=True)
    length = schema.column("length")
    assert length.minimum == clean["length"].min() and length.maximum == clean["length"].max()


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1.5, 2.0, None], "numeric"),
        ([True, False, None], "boolean"),
        (["yes", "no", "yes"], "boolean"),
        (["red", "blue", None], "categorical"),
        (["1", "2", "3", "4", "5", "6", "7", "8", "9", "x"], "numeric"),
        (["1", "red", "blue"], "categorical"),
    ],
)
def test_kind_of(values: list[object], kind: str) -> None:
    assert kind_of(pd.Series(values)) == kind


@pytest.mark.parametrize(
    ("edit", "columns", "message"),
    [
        (
            ("length", 5, "abc"),
            {},
            "column 'length' has a non-numeric value 'abc' at row 7 (counting the header as "
            "row 1); fix the value, or declare the column categorical "
            "(data.columns.length.kind=categorical)",
        ),
        (
            ("tagged", 6, "maybe"),
            {"tagged": ColumnSettings(kind="boolean")},
            "column 'tagged' has a non-boolean value 'maybe' at row 8",
        ),
        (
            ("island", 3, None),
            {"island": ColumnSettings(allow_missing=False)},
            "column 'island' has a missing value at row 5",
        ),
        (
            ("label", 9, None),
            {},
            "column 'label' has a missing label at row 11 (counting the header as row 1); every "
            "row needs a label",
        ),
        (("length", 8, np.inf), {}, "column 'length' has an infinite value at row 10"),
        (("length", 0, 1.0), {"colour": ColumnSettings()}, "data.columns.colour names no feature"),
        (
            ("length", 0, 1.0),
            {"label": ColumnSettings(allow_missing=True)},
            "the target 'label' can never be missing",
        ),
    ],
)
def test_each_bad_value_is_one_line_naming_column_row_and_fix(
    edit: tuple[str, int, object], columns: dict[str, ColumnSettings], message: str
) -> None:
    frame = _mixed()
    column, row, value = edit
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    with pytest.raises(DataError) as info:
        _validate(frame, **columns)
    assert message in info.value.message
    assert "\n" not in info.value.message


def test_integer_labels_binary_and_many_classes() -> None:
    rng = np.random.default_rng(1)
    binary = pd.DataFrame({"x": rng.normal(size=20), "label": [0, 1] * 10})
    _, classes, _ = validate_frame(binary, ["x"], "label", 2)
    assert classes == ["0", "1"]
    many = pd.DataFrame({"x": rng.normal(size=300), "label": list(range(50)) * 6})
    _, classes, _ = validate_frame(many, ["x"], "label", 5)
    assert classes == [str(i) for i in range(50)]  # numeric order: "2" before "10"
