"""Where the server learns what it should serve: the registry (aliases + traffic tag).

Every call here blocks (SQLite, HTTP, file hashing); the holder runs them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from petalops.config import Settings
from petalops.errors import NotFoundError
from petalops.registry import VersionInfo, model_tag, parse_ref, resolve
from petalops.registry.cache import BundleCache
from petalops.registry.resolve import open_runtime
from petalops.registry.signatures import SIGNATURE_TAG, SIGNING_KEY_TAG
from petalops.rollout.routing import TRAFFIC_TAG, TrafficPolicy
from petalops.runtime.model import ModelRuntime
from petalops.serving.preload import take as take_preloaded


@dataclass(frozen=True)
class Desired:
    """The versions the registry says should be serving, and how to split traffic."""

    champion: VersionInfo
    challenger: VersionInfo | None = None
    previous: VersionInfo | None = None
    policy: TrafficPolicy = field(default_factory=TrafficPolicy.none)


class ModelSource(Protocol):
    name: str

    def desired(self) -> Desired: ...

    def resolve_version(self, version: str) -> VersionInfo: ...

    def load(self, info: VersionInfo) -> ModelRuntime: ...

    def last_known_good(self) -> list[VersionInfo]: ...

    def remember(self, info: VersionInfo) -> None: ...


class RegistrySource:
    """The MLflow registry through `petalops.registry` (the only module that talks to it).

    ``serve.model`` set to ``iris@champion`` (the default) follows the champion, the
    challenger, the previous champion and the traffic policy; any other reference
    (``iris/3``, ``iris@staging``) pins the server to that one model with no rollout.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ref = settings.model_ref
        name, alias, _version = parse_ref(self.ref, settings.project)
        self.name = name
        self.follows_rollout = alias == "champion"

    def desired(self) -> Desired:
        champion = resolve(self.settings, self.ref)
        if not self.follows_rollout:
            return Desired(champion=champion)
        challenger = self._optional("challenger")
        previous = self._optional("previous")
        policy = TrafficPolicy.none()
        if challenger is not None and challenger.version != champion.version:
            policy = TrafficPolicy.parse(self._traffic_tag())
        else:
            challenger = None
        if previous is not None and previous.version == champion.version:
            previous = None
        return Desired(champion=champion, challenger=challenger, previous=previous, policy=policy)

    def resolve_version(self, version: str) -> VersionInfo:
        return resolve(self.settings, f"{self.name}/{version}")

    def load(self, info: VersionInfo) -> ModelRuntime:
        # The version `desired()` resolved, by number and sha256: a cached bundle opens
        # without asking the registry again (it may be down by now).
        # A worker forked from `petalops serve` takes the copy its parent opened (preload.py).
        inherited = take_preloaded(info)
        runtime = inherited[0] if inherited is not None else open_runtime(self.settings, info)
        if self.settings.serve.test_faults:
            from petalops.serving.faults import with_faults

            return with_faults(runtime, info.tags)
        return runtime

    def last_known_good(self) -> list[VersionInfo]:
        """The verified champions this home served, newest first (for a registry outage)."""
        return [
            VersionInfo(name=k.name, version=k.version, run_id="", sha256=k.sha256, tags=k.tags)
            for k in BundleCache(self.settings.cache_dir).last_known_good(self.name)
        ]

    def remember(self, info: VersionInfo) -> None:
        """Record ``info`` as this home's last-known-good champion."""
        signature = {k: v for k, v in info.tags.items() if k in (SIGNATURE_TAG, SIGNING_KEY_TAG)}
        BundleCache(self.settings.cache_dir).remember(
            info.name, info.version, info.sha256, signature
        )

    def _optional(self, alias: str) -> VersionInfo | None:
        try:
            return resolve(self.settings, f"{self.name}@{alias}")
        except NotFoundError:
            return None

    def _traffic_tag(self) -> str | None:
        return model_tag(self.settings, self.name, TRAFFIC_TAG)
