"""Schema inference and validation of training data, with one-line errors that say the fix."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from petalops.errors import DataError

# pandera check name -> (priority, message template); the first failure by priority is reported.
_MESSAGES: dict[str, tuple[int, str]] = {
    "column_in_dataframe": (0, "column {case!r} is missing; the data has columns {columns}"),
    "coerce_dtype": (1, "column {column!r} has a non-numeric value {case!r} at row {row}"),
    "dtype": (1, "column {column!r} has a non-numeric value {case!r} at row {row}"),
    "not_nullable": (2, "column {column!r} has a missing (NaN) value at row {row}"),
    "finite": (3, "column {column!r} has an infinite value at row {row}"),
    "isin": (4, "label {case!r} in column {column!r} at row {row} is not one of {classes}"),
}


def _finite(series: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(series.to_numpy(dtype="float64", na_value=np.nan)), series.index)


def validate_frame(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    min_rows_per_class: int,
    known_classes: list[str] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Validate features (numeric, finite) and labels; return the clean frame and class list."""
    with warnings.catch_warnings():
        # With the spark extra installed, pandera tries pandas-on-Spark at import and again
        # when it first validates; each try warns that it does not "yet fully support"
        # pandas 3 (and fails). Nothing here uses it.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        return _validate(frame, features, target, min_rows_per_class, known_classes)


def _validate(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    min_rows_per_class: int,
    known_classes: list[str] | None,
) -> tuple[pd.DataFrame, list[str]]:
    import pandera.pandas as pa

    if frame.empty:
        raise DataError("the data has no rows; it needs a header row and data rows")
    if not features:
        raise DataError(f"no feature columns besides the target {target!r}; add feature columns")
    if target in features:
        raise DataError(f"target column {target!r} is also listed as a feature; remove it there")
    frame = frame.copy()
    if target in frame.columns:
        frame[target] = frame[target].map(lambda v: v if pd.isna(v) else _label(v))
        if known_classes and frame[target].dropna().map(str.isdigit).all():
            numbers = frame[target].dropna().astype(int)
            if numbers.between(0, len(known_classes) - 1).all():
                frame[target] = frame[target].map(
                    lambda v: v if pd.isna(v) else known_classes[int(v)]
                )
    columns: dict[str, pa.Column] = {
        name: pa.Column(
            float,
            checks=pa.Check(_finite, name="finite"),
            nullable=False,
            coerce=True,
        )
        for name in features
    }
    label_checks = [pa.Check.isin(known_classes)] if known_classes else []
    columns[target] = pa.Column(str, checks=label_checks, nullable=False)
    schema = pa.DataFrameSchema(columns)
    try:
        clean = schema.validate(frame[[c for c in frame.columns if c in columns]], lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise _first_error(exc.failure_cases, frame, known_classes) from None
    except pa.errors.SchemaError as exc:  # pragma: no cover - lazy=True raises SchemaErrors
        raise DataError(str(exc).splitlines()[0]) from None
    classes = list(known_classes) if known_classes else sorted(clean[target].unique())
    counts = clean[target].value_counts()
    if len(classes) < 2 or len(counts) < 2:
        raise DataError(
            f"column {target!r} has {len(counts)} distinct label(s); a classifier needs at least 2"
        )
    too_few = [(c, int(counts.get(c, 0))) for c in classes if counts.get(c, 0) < min_rows_per_class]
    if too_few:
        label, count = too_few[0]
        raise DataError(
            f"class {label!r} has {count} row(s); each class needs at least {min_rows_per_class} "
            "(add rows or lower data.min_rows_per_class)"
        )
    return clean[[*features, target]].reset_index(drop=True), classes


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _first_error(
    cases: pd.DataFrame, frame: pd.DataFrame, known_classes: list[str] | None
) -> DataError:
    best: tuple[int, str] | None = None
    for case in cases.itertuples(index=False):
        check = str(case.check).split("(")[0]
        priority, template = _MESSAGES.get(check, (9, "column {column!r}: check {check} failed"))
        raw_index = case.index
        row = "?" if raw_index is None or pd.isna(raw_index) else int(raw_index) + 2
        message = template.format(
            case=case.failure_case,
            column=case.column,
            columns=list(frame.columns),
            row=f"{row} (counting the header as row 1)",
            classes=known_classes,
            check=check,
        )
        if check == "not_nullable" and case.column not in frame.columns:
            continue
        if best is None or priority < best[0]:
            best = (priority, message)
    return DataError(best[1] if best else "the data does not match the expected schema")
