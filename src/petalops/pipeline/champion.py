"""The gate's comparison point: the current champion, measured on this run's test split."""

from __future__ import annotations

from dataclasses import dataclass

from petalops.config import Settings
from petalops.data.load import Dataset
from petalops.errors import PetalopsError
from petalops.pipeline.split import Split
from petalops.registry import load_runtime
from petalops.registry.store import alias_version, get_run, get_version


@dataclass(frozen=True)
class Champion:
    """The champion's version and accuracy (both ``None`` when there is no champion)."""

    version: str | None = None
    accuracy: float | None = None


NO_CHAMPION = Champion()


def find_champion(settings: Settings, dataset: Dataset, split: Split) -> Champion:
    """The champion's accuracy on this run's test split (its recorded metric if the schema
    changed, so that its model cannot score these rows)."""
    version = alias_version(settings, "champion")
    if version is None:
        return NO_CHAMPION
    try:
        runtime = load_runtime(settings, f"{settings.project}/{version}")
        if runtime.features == dataset.features and runtime.classes == dataset.classes:
            return Champion(version, float((runtime.predict(split.x_test) == split.y_test).mean()))
    except PetalopsError:
        pass
    info = get_version(settings, version)
    return Champion(version, get_run(settings, info.run_id).metrics.get("accuracy"))
