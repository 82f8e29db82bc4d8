"""Validation of training data: each feature's kind inferred (or as declared in
``data.columns``), its values brought to the canonical form of that kind, and one-line errors
that name the column, the row and the fix.

The clean frame holds numeric and boolean features as float64 (NaN where missing, booleans as
1.0/0.0), categorical features as Python strings (NaN where missing) and the target as strings.
This is what the scikit-learn Pipeline is fitted on and what the stock MLflow flavour takes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from petalops.config import ColumnSettings
from petalops.data.schema import (
    ColumnSchema,
    Kind,
    Schema,
    boolean_value,
    category_text,
    is_missing,
)
from petalops.errors import DataError

# A text column in which at least this share of the values are numbers is a numeric column
# with a few bad values, not a categorical one: its non-numbers are reported, not learnt.
NUMERIC_SHARE = 0.9

# pandera check name -> (priority, message template); the first failure by priority is reported.
_MESSAGES: dict[str, tuple[int, str]] = {
    "column_in_dataframe": (0, "column {case!r} is missing; the data has columns {columns}"),
    "not_nullable": (
        2,
        "column {column!r} has a missing value at row {row}; fill it in, or allow it with "
        "data.columns.{column}.allow_missing=true",
    ),
    "finite": (3, "column {column!r} has an infinite value at row {row}"),
    "isin": (4, "label {case!r} in column {column!r} at row {row} is not one of {classes}"),
}


def _row(index: Any) -> str:
    return f"{int(index) + 2} (counting the header as row 1)"


def validate_frame(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    min_rows_per_class: int,
    known_classes: list[str] | None = None,
    columns: Mapping[str, ColumnSettings] | None = None,
) -> tuple[pd.DataFrame, list[str], Schema]:
    """Validate features and labels; return the clean frame, the class list and the schema."""
    with warnings.catch_warnings():
        # With the spark extra installed, pandera tries pandas-on-Spark at import and again
        # when it first validates; each try warns that it does not "yet fully support"
        # pandas 3 (and fails). Nothing here uses it.
        warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
        return _validate(frame, features, target, min_rows_per_class, known_classes, columns or {})


def _validate(
    frame: pd.DataFrame,
    features: list[str],
    target: str,
    min_rows_per_class: int,
    known_classes: list[str] | None,
    settings: Mapping[str, ColumnSettings],
) -> tuple[pd.DataFrame, list[str], Schema]:
    import pandera.pandas as pa

    if frame.empty:
        raise DataError("the data has no rows; it needs a header row and data rows")
    if not features:
        raise DataError(f"no feature columns besides the target {target!r}; add feature columns")
    if target in features:
        raise DataError(f"target column {target!r} is also listed as a feature; remove it there")
    unknown = sorted(set(settings) - set(features) - {target})
    if unknown:
        raise DataError(f"data.columns.{unknown[0]} names no feature; the features are {features}")
    if target in settings and settings[target].allow_missing:
        raise DataError(
            f"data.columns.{target}.allow_missing: the target {target!r} can never be missing; "
            "drop the rows without a label instead"
        )
    for name in [*features, target]:
        if name not in frame.columns:
            raise DataError(
                f"column {name!r} is missing; the data has columns {list(frame.columns)}"
            )
    frame = frame.reset_index(drop=True)
    labels = _labels(frame[target], target, known_classes)
    clean: dict[str, Any] = {}
    kinds: dict[str, Kind] = {}
    for name in features:
        declared = settings.get(name, ColumnSettings()).kind
        kind, values = _column(frame[name], name, declared)
        kinds[name] = kind
        clean[name] = values
    clean[target] = labels
    clean_frame = pd.DataFrame(clean, index=frame.index)
    allow = {n: settings.get(n, ColumnSettings()).allow_missing for n in features}
    checks: dict[str, pa.Column] = {}
    for name in features:
        if kinds[name] == "categorical":
            checks[name] = pa.Column(object, nullable=allow[name])
        else:
            checks[name] = pa.Column(
                float, checks=pa.Check(_finite, name="finite"), nullable=allow[name]
            )
    label_checks = [pa.Check.isin(known_classes)] if known_classes else []
    checks[target] = pa.Column(str, checks=label_checks, nullable=False)
    try:
        pa.DataFrameSchema(checks).validate(clean_frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise _first_error(exc.failure_cases, frame, known_classes) from None
    classes = list(known_classes) if known_classes else _sorted_labels(labels)
    counts = labels.value_counts()
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
    schema = describe(clean_frame, features, kinds, allow)
    return clean_frame[[*features, target]], classes, schema


def describe(
    frame: pd.DataFrame,
    features: list[str],
    kinds: Mapping[str, Kind],
    allow_missing: Mapping[str, bool],
) -> Schema:
    """The schema of clean feature columns: kinds, categories with counts, ranges, missing."""
    columns = []
    for name in features:
        values = frame[name]
        missing = int(values.isna().sum())
        kind = kinds[name]
        if kind == "categorical":
            counts = values.dropna().value_counts()
            ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
            columns.append(
                ColumnSchema(
                    name,
                    kind,
                    allow_missing[name],
                    missing,
                    categories={str(k): int(v) for k, v in ordered},
                )
            )
            continue
        present = values.dropna().to_numpy(dtype=np.float64)
        columns.append(
            ColumnSchema(
                name,
                kind,
                allow_missing[name],
                missing,
                minimum=float(present.min()) if len(present) else None,
                maximum=float(present.max()) if len(present) else None,
                mean=float(present.mean()) if len(present) else None,
            )
        )
    return Schema(tuple(columns))


def kind_of(values: pd.Series) -> Kind:
    """The kind of a column left to ``auto``: numbers are numeric, true/false is boolean,
    anything else categorical."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_numeric_dtype(values):
        return "numeric"
    present = [v for v in values if not is_missing(v)]
    if not present:
        return "numeric"
    if all(isinstance(v, (bool, np.bool_)) for v in present) or all(
        isinstance(v, str) and boolean_value(v) is not None and not v.strip().isdigit()
        for v in present
    ):
        return "boolean"
    numbers = sum(1 for v in present if _as_number(v) is not None)
    return "numeric" if numbers >= NUMERIC_SHARE * len(present) else "categorical"


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _column(values: pd.Series, name: str, declared: str) -> tuple[Kind, pd.Series]:
    kind: Kind = kind_of(values) if declared == "auto" else declared  # type: ignore[assignment]
    if kind == "categorical":
        out = [np.nan if is_missing(v) else category_text(v) for v in values]
        return kind, pd.Series(out, index=values.index, dtype=object)
    if kind == "boolean":
        parsed = []
        for index, v in values.items():
            if is_missing(v):
                parsed.append(np.nan)
                continue
            b = boolean_value(v)
            if b is None:
                raise DataError(
                    f"column {name!r} has a non-boolean value {v!r} at row {_row(index)}; "
                    "use true/false (or 1/0)"
                )
            parsed.append(b)
        return kind, pd.Series(parsed, index=values.index, dtype=np.float64)
    if pd.api.types.is_bool_dtype(values):
        return kind, values.astype(np.float64)
    if pd.api.types.is_numeric_dtype(values):
        return kind, values.astype(np.float64)
    numbers = []
    for index, v in values.items():
        if is_missing(v):
            numbers.append(np.nan)
            continue
        number = _as_number(v)
        if number is None:
            raise DataError(
                f"column {name!r} has a non-numeric value {v!r} at row {_row(index)}; fix the "
                f"value, or declare the column categorical (data.columns.{name}.kind=categorical)"
            )
        numbers.append(number)
    return kind, pd.Series(numbers, index=values.index, dtype=np.float64)


def _labels(values: pd.Series, target: str, known_classes: list[str] | None) -> pd.Series:
    missing = values.map(is_missing)
    if missing.any():
        index = missing[missing].index[0]
        raise DataError(
            f"column {target!r} has a missing label at row {_row(index)}; every row needs a "
            "label (fill it in or drop the row)"
        )
    labels = values.map(_label)
    if known_classes and labels.map(str.isdigit).all():
        numbers = labels.astype(int)
        if numbers.between(0, len(known_classes) - 1).all():
            labels = numbers.map(lambda v: known_classes[int(v)])
    return labels.astype(object)


def _label(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "item"):
        return _label(value.item())
    return str(value)


def _sorted_labels(labels: pd.Series) -> list[str]:
    unique = [str(v) for v in labels.unique()]
    if all(v.lstrip("-").isdigit() for v in unique):
        return sorted(unique, key=int)  # integer labels in numeric order: 2 before 10
    return sorted(unique)


def _finite(series: pd.Series) -> pd.Series:
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return pd.Series(~np.isinf(values), series.index)


def _first_error(
    cases: pd.DataFrame, frame: pd.DataFrame, known_classes: list[str] | None
) -> DataError:
    best: tuple[int, str] | None = None
    for case in cases.itertuples(index=False):
        check = str(case.check).split("(")[0]
        priority, template = _MESSAGES.get(check, (9, "column {column!r}: check {check} failed"))
        raw_index = case.index
        row = "?" if raw_index is None or pd.isna(raw_index) else _row(raw_index)
        message = template.format(
            case=case.failure_case,
            column=case.column,
            columns=list(frame.columns),
            row=row,
            classes=known_classes,
            check=check,
        )
        if best is None or priority < best[0]:
            best = (priority, message)
    return DataError(best[1] if best else "the data does not match the expected schema")
