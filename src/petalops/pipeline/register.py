"""The register step: a gated run becomes a model version, ``champion`` if there was none
before it, else ``challenger`` (a rollout decides whether it serves)."""

from __future__ import annotations

from petalops.config import Settings
from petalops.errors import NotFoundError
from petalops.pipeline.load import TrainingData
from petalops.registry import list_versions
from petalops.registry.store import register_version, set_alias


def find_registered(settings: Settings, key: str) -> tuple[str, str] | None:
    """``(version, run id)`` of a version already trained with this train key, if any."""
    try:
        versions = list_versions(settings)
    except NotFoundError:  # no registry yet: nothing was trained
        return None
    for info in versions:
        if info.tags.get("petalops.train_key") == key:
            return info.version, info.run_id
    return None


def register_model(
    settings: Settings,
    data: TrainingData,
    *,
    model_uri: str,
    run_id: str,
    digest: str,
    accuracy: float,
    champion_version: str | None,
) -> tuple[str, str]:
    """Register the run's model and give it its alias (``challenger`` when a champion
    exists); ``(version, alias)``."""
    version = register_version(
        settings,
        model_uri,
        run_id,
        digest,
        {
            "petalops.train_key": data.key,
            "petalops.data_sha256": data.sha256,
            "petalops.accuracy": f"{accuracy:.6f}",
            "petalops.gate": "passed",
        },
    )
    alias = "challenger" if champion_version else "champion"
    set_alias(settings, alias, version)
    return version, alias
