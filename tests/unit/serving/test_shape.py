"""`ApiShape`: the documented interface comes from the settings."""

from __future__ import annotations

from pathlib import Path

from petalops.config import IRIS_CLASSES, IRIS_FEATURES, Settings
from petalops.serving.shape import IRIS_EXAMPLE, ApiShape


def test_iris_by_default(tmp_path: Path) -> None:
    shape = ApiShape.from_settings(Settings(home=tmp_path))  # type: ignore[call-arg]
    assert (shape.name, shape.features, shape.classes) == ("iris", IRIS_FEATURES, IRIS_CLASSES)
    assert shape.example_row == IRIS_EXAMPLE
    assert shape.example_record == dict(zip(IRIS_FEATURES, IRIS_EXAMPLE, strict=True))


def test_a_project_of_its_own(tmp_path: Path) -> None:
    settings = Settings(  # type: ignore[call-arg]
        home=tmp_path, project="rose", data={"features": ["a", "b"], "classes": ["x", "y"]}
    )
    shape = ApiShape.from_settings(settings)
    assert (shape.name, shape.features, shape.classes) == ("rose", ["a", "b"], ["x", "y"])
    assert shape.example_record == {"a": 0.0, "b": 0.0}
