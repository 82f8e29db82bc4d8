"""The model's interface as the API documents it (from settings; Iris by default)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

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
    example_row: list[float]

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiShape:
        features = settings.data.features or ["feature_0", "feature_1", "feature_2", "feature_3"]
        classes = settings.data.classes or []
        example = IRIS_EXAMPLE if features == IRIS_FEATURES else [0.0] * len(features)
        if features == IRIS_FEATURES and not classes:
            classes = IRIS_CLASSES
        return cls(settings.project, list(features), list(classes), list(example))

    @cached_property
    def example_record(self) -> dict[str, float]:
        """The example row as an object of named features."""
        return dict(zip(self.features, self.example_row, strict=True))
