"""The register step: a gated run becomes a model version, ``champion`` if there was none
before it, else ``challenger`` (a rollout decides whether it serves) — but never while a
rollout runs: that rollout owns ``@challenger``, and the new version waits, unaliased."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING

from petalops.config import Settings
from petalops.errors import NotFoundError
from petalops.pipeline.identity import SOURCE_KEY_TAG
from petalops.registry import list_versions
from petalops.registry.signatures import signature_tags
from petalops.registry.store import (
    alias_version,
    model_tags,
    register_version,
    set_alias,
)
from petalops.runtime.signing import Signature

if TYPE_CHECKING:
    from petalops.pipeline.load import TrainingData

# The tag `petalops.rollout.control_plane` publishes the plan in. Read as data here: the
# pipeline sits below the rollout package and never imports it.
ROLLOUT_PLAN_TAG = "petalops.rollout"


TRAIN_KEY_TAG = "petalops.train_key"


def find_registered(
    settings: Settings, key: str, tag: str = TRAIN_KEY_TAG
) -> tuple[str, str] | None:
    """``(version, run id)`` of a version already trained with this train key (or the key
    in another ``tag``: `identity.SOURCE_KEY_TAG`), if any."""
    try:
        versions = list_versions(settings)
    except NotFoundError:  # no registry yet: nothing was trained
        return None
    for info in versions:
        if info.tags.get(tag) == key:
            return info.version, info.run_id
    return None


def running_rollout(settings: Settings) -> str | None:
    """``"<rollout id> (version N)"`` of the rollout in progress, or None. A plan is over
    once it records when it ended (promoted, rolled back, aborted, passed)."""
    raw = model_tags(settings).get(ROLLOUT_PLAN_TAG, "")
    try:
        plan = json.loads(raw) if raw else None
    except ValueError:
        return None
    if not isinstance(plan, dict) or plan.get("ended") or not plan.get("phase"):
        return None
    return f"{plan.get('rollout_id', '?')} (version {plan.get('version', '?')})"


@contextlib.contextmanager
def registering(settings: Settings) -> Iterator[None]:
    """One registration at a time from this home: two `petalops train` started together
    would otherwise both see "no champion" and both take ``@champion``."""
    path = settings.home_dir / "register.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def register_model(
    settings: Settings,
    data: TrainingData,
    *,
    model_uri: str,
    run_id: str,
    digest: str,
    accuracy: float,
    champion_version: str | None,
    signature: Signature | None = None,
) -> tuple[str, str]:
    """Register the run's model and give it its alias (``challenger`` when a champion
    exists, none while a rollout runs); ``(version, alias)``, the alias ``""`` for none.
    ``signature`` (of the bundle's manifest) is recorded on the version as it is created."""
    with registering(settings):
        version = register_version(
            settings,
            model_uri,
            run_id,
            digest,
            {
                TRAIN_KEY_TAG: data.key,
                **({SOURCE_KEY_TAG: data.source_key} if data.source_key else {}),
                "petalops.data_sha256": data.sha256,
                "petalops.accuracy": f"{accuracy:.6f}",
                "petalops.gate": "passed",
                **(signature_tags(signature) if signature is not None else {}),
            },
        )
        # Read again under the lock: a concurrent first train may have taken @champion
        # since the gate looked.
        champion = champion_version or alias_version(settings, "champion")
        if champion is None:
            set_alias(settings, "champion", version)
            return version, "champion"
        if running_rollout(settings) is not None:
            return version, ""
        set_alias(settings, "challenger", version)
        return version, "challenger"
