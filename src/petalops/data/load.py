"""Load training data: the Iris set bundled inside scikit-learn, or a CSV / Parquet file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from petalops.config import IRIS_CLASSES, IRIS_FEATURES, IRIS_SOURCE, DataSettings
from petalops.data.fingerprint import Fingerprint, fingerprint
from petalops.data.schema import Schema
from petalops.data.validate import validate_frame
from petalops.errors import DataError


@dataclass(frozen=True)
class Dataset:
    """Validated training data: features in canonical form (see `petalops.data.schema`) as an
    ``(n, n_features)`` array, float64 when every feature is numeric, else object (floats for
    numeric and boolean features, strings for categorical ones, NaN where missing); labels as
    indices into ``classes``; and the inferred schema."""

    frame: pd.DataFrame
    features: list[str]
    target: str
    classes: list[str]
    x: npt.NDArray[Any]
    y: npt.NDArray[np.int64]
    source: str
    fingerprint: Fingerprint
    schema: Schema
    file_path: Path | None = None
    # A local path MLflow can record as the dataset's source (for Iris: the CSV inside sklearn).
    source_path: str = ""


def iris_frame(target: str = "species") -> pd.DataFrame:
    """The Iris set as shipped inside scikit-learn, with readable column names."""
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.data.copy()
    frame.columns = IRIS_FEATURES
    frame[target] = [IRIS_CLASSES[int(i)] for i in bunch.target]
    return frame


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file with a clear error for every way it can be unusable."""
    if not path.exists():
        raise DataError(
            f"data file {path} does not exist; pass --data PATH to a CSV or Parquet file"
        )
    if path.is_dir():
        raise DataError(f"data path {path} is a directory; pass a CSV or Parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix in {".parquet", ".pq"}:
            frame = pd.read_parquet(path)
        elif suffix in {".csv", ".txt"}:
            frame = pd.read_csv(path)
        else:
            raise DataError(
                f"data file {path} must end in .csv or .parquet (got {suffix or 'none'})"
            )
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path} is empty; it needs a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"data file {path} cannot be read: {first}") from None
    if frame.empty:
        raise DataError(f"data file {path} has no data rows; add rows under the header")
    return frame


def load_dataset(settings: DataSettings, path: str | Path | None = None) -> Dataset:
    """Load, validate and fingerprint the training data named by settings (or ``path``)."""
    source = str(path) if path else settings.source
    file_path: Path | None = None
    if source == IRIS_SOURCE:
        frame = iris_frame(settings.target)
        import sklearn

        origin = f"{IRIS_SOURCE} (scikit-learn {sklearn.__version__})"
        source_path = str(Path(sklearn.__file__).parent / "datasets" / "data" / "iris.csv")
    else:
        file_path = Path(source)
        frame = read_table(file_path)
        origin = str(file_path.resolve())
        source_path = origin
    if settings.features is not None:
        features = list(settings.features)
    else:
        features = [c for c in frame.columns if c != settings.target]
    clean, classes, schema = validate_frame(
        frame,
        features,
        settings.target,
        settings.min_rows_per_class,
        known_classes=settings.classes,
        columns=settings.columns,
    )
    x = feature_array(clean[features], schema)
    index = {label: i for i, label in enumerate(classes)}
    y = np.fromiter((index[v] for v in clean[settings.target]), dtype=np.int64, count=len(clean))
    return Dataset(
        frame=clean,
        features=features,
        target=settings.target,
        classes=classes,
        x=x,
        y=y,
        source=origin,
        fingerprint=fingerprint(clean, schema, settings.target),
        schema=schema,
        file_path=file_path,
        source_path=source_path,
    )


def feature_array(frame: pd.DataFrame, schema: Schema) -> npt.NDArray[Any]:
    """Canonical feature columns as one array: float64 if all are numeric, else object."""
    if schema.numeric_only:
        return np.asarray(frame[schema.names].to_numpy(dtype=np.float64))
    return np.asarray(frame[schema.names].to_numpy(dtype=object))


def feature_frame(x: npt.NDArray[Any], schema: Schema) -> pd.DataFrame:
    """The frame a Pipeline is fitted on and predicts from: numeric and boolean columns as
    float64, categorical ones as strings with NaN where missing (what the stock MLflow flavour
    takes too)."""
    columns: dict[str, Any] = {}
    for j, column in enumerate(schema.columns):
        values = x[:, j]
        if column.kind == "categorical":
            series = pd.Series(values, dtype=object)
            # None (a JSON null, e.g. rows taken back from the prediction log) is missing too:
            # scikit-learn's imputers count only NaN as missing and would keep None as a category.
            columns[column.name] = series.where(series.notna(), np.nan)
        else:
            columns[column.name] = pd.Series(values, dtype=np.float64)
    return pd.DataFrame(columns)
