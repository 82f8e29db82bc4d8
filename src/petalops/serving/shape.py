"""The model's interface as the API documents it (from settings; Iris by default)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from petalops.config import IRIS_CLASSES, IRIS_FEATURES, Settings

IRIS_EXAMPLE = [5.1, 3.5, 1.4, 0.2]


@dataclass(frozen=True)
class ApiShape:
    """The served model's name, feature names, classes and one valid row.

    Codecs build their examples (shown in every 4xx answer) and their OpenAPI schemas from
    it, so the documented contract carries the project's own features.
    """

    name: str
    features: list[str]
    classes: list[str]
    example_row: list[Any]

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiShape:
        first = _first_row(settings.data.source, settings.data.target)
        features = (
            settings.data.features
            or (list(first) if first else None)
            or ["feature_0", "feature_1", "feature_2", "feature_3"]
        )
        classes = settings.data.classes or []
        if features == IRIS_FEATURES:
            example: list[Any] = list(IRIS_EXAMPLE)
        elif first and all(f in first for f in features):
            example = [first[f] for f in features]  # a real row: every kind as it should be
        else:
            example = [0.0] * len(features)
        if features == IRIS_FEATURES and not classes:
            classes = IRIS_CLASSES
        return cls(settings.project, list(features), list(classes), list(example))

    @cached_property
    def example_record(self) -> dict[str, Any]:
        """The example row as an object of named features."""
        return dict(zip(self.features, self.example_row, strict=True))


def _first_row(source: str, target: str) -> dict[str, Any] | None:
    """The first data row of a CSV training file (without its target), values typed as the
    server takes them: numbers, strings, null for an empty cell. ``None`` when the file is
    not here (a server away from the training data) or not a CSV."""
    path = Path(source)
    if path.suffix.lower() != ".csv" or not path.is_file():
        return None
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header, values = next(reader), next(reader)
    except (OSError, StopIteration, UnicodeDecodeError, csv.Error):
        return None
    row: dict[str, Any] = {}
    for name, text in zip(header, values, strict=False):
        if name == target:
            continue
        try:
            row[name] = float(text) if text else None
        except ValueError:
            row[name] = text
    return row
