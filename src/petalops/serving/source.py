"""Where the server learns what it should serve: the registry (aliases + traffic tag).

Every call here blocks (SQLite, HTTP, file hashing); the holder runs them in a thread.
"""

from __future__ import annotations

import json
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol

from petalops.config import Settings
from petalops.errors import NotFoundError, RegistryUnavailableError
from petalops.registry import VersionInfo, load_runtime, parse_ref, resolve
from petalops.rollout.routing import TRAFFIC_TAG, TrafficPolicy
from petalops.runtime.model import ModelRuntime


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
        # By number, not alias: the alias may have moved since `desired()` read it.
        runtime = load_runtime(self.settings, f"{info.name}/{info.version}")
        if self.settings.serve.test_faults:
            from petalops.serving.faults import with_faults

            return with_faults(runtime, info.tags)
        return runtime

    def _optional(self, alias: str) -> VersionInfo | None:
        try:
            return resolve(self.settings, f"{self.name}@{alias}")
        except NotFoundError:
            return None

    def _traffic_tag(self) -> str | None:
        return read_model_tag(self.settings, self.name, TRAFFIC_TAG)


def read_model_tag(settings: Settings, name: str, key: str, timeout: float = 5.0) -> str | None:
    """One registered-model tag, read the cheap way `petalops.registry.resolve` reads aliases.

    The MLflow client costs ~2 s of import and stalls the worker's event loop while it
    loads, so the embedded SQLite store is read directly (read-only) and a tracking server
    through its REST API; other stores fall back to the client.
    TODO(registry): belongs in `petalops.registry.resolve` beside `resolve()`.
    """
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///"):
        db = uri[len("sqlite:///") :]
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=timeout)
            try:
                row = con.execute(
                    "SELECT value FROM registered_model_tags WHERE name=? AND key=?", (name, key)
                ).fetchone()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise RegistryUnavailableError(f"cannot read the registry {db}: {exc}") from None
        return None if row is None else str(row[0])
    if uri.startswith(("http://", "https://")):
        url = f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/get?" + urllib.parse.urlencode(
            {"name": name}
        )
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                data = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise RegistryUnavailableError(f"registry at {uri} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise RegistryUnavailableError(f"registry at {uri} is unreachable: {exc}") from None
        for tag in data.get("registered_model", {}).get("tags", []):
            if tag.get("key") == key:
                return str(tag.get("value", ""))
        return None
    from petalops.registry.store import model_tags

    return model_tags(settings, name).get(key)
