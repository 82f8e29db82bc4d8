"""The registry's read model for pages that watch it: every version with its aliases and
lineage, the registered model's tags, the quality gate's checks.

Built on the registry's own cheap reads (`petalops.registry.resolve`: `list_versions`,
`model_state`, `get_run`, `read_run_json`), which read the embedded SQLite store through
MLflow's tables (read-only) and a tracking server through its REST API, and use the MLflow
client only for other stores.
"""

from __future__ import annotations

import contextlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from petalops.config import Settings
from petalops.errors import PetalopsError
from petalops.registry.resolve import (
    SHA_TAG,
    VersionInfo,
    _sqlite_path,
    get_run,
    list_versions,
    model_state,
    read_run_json,
)

if TYPE_CHECKING:
    from petalops.registry.store import RunRecord

# How many of the newest versions a catalog lists (aliased ones are always listed).
NEWEST = 20


@dataclass(frozen=True)
class VersionLineage:
    """One registered version: aliases, bundle checksum, and where it came from."""

    info: VersionInfo
    run: RunRecord | None

    @property
    def version(self) -> str:
        return self.info.version

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def aliases(self) -> list[str]:
        return self.info.aliases

    @property
    def sha256(self) -> str:
        return self.info.tags.get(SHA_TAG, "")

    def _run_tag(self, key: str) -> str:
        return self.run.tags.get(key, "") if self.run else ""

    @property
    def data_fingerprint(self) -> str:
        """The content hash of the training data (`petalops.data.fingerprint`)."""
        return self.info.tags.get("petalops.data_sha256") or self._run_tag("petalops.data_sha256")

    @property
    def code_commit(self) -> str:
        return self._run_tag("petalops.git_commit") or self._run_tag("mlflow.source.git.commit")

    @property
    def gate(self) -> str:
        """``passed`` or ``failed``: the quality gate's verdict on this version."""
        return self.info.tags.get("petalops.gate") or self._run_tag("petalops.gate")

    def to_json(self) -> dict[str, Any]:
        params = self.run.params if self.run else {}
        return {
            "version": self.version,
            "run_id": self.run_id,
            "created": self.info.created,
            "aliases": self.aliases,
            "sha256": self.sha256,
            "data_fingerprint": self.data_fingerprint,
            "data_rows": self._run_tag("petalops.data_rows") or params.get("data.rows", ""),
            "data_snapshot": self._run_tag("petalops.data_snapshot"),
            "code_commit": self.code_commit,
            "gate": self.gate,
            "run_name": self._run_tag("mlflow.runName"),
            "metrics": dict(sorted(self.run.metrics.items())) if self.run else {},
            "params": dict(sorted(params.items())),
        }


@dataclass(frozen=True)
class Catalog:
    """The registered model: its aliases, its tags (traffic policy, rollout plan) and its
    newest versions, newest first."""

    name: str
    aliases: dict[str, str]
    tags: dict[str, str]
    versions: list[VersionLineage]


RunCache = MutableMapping[str, "RunRecord"]


def read_catalog(
    settings: Settings,
    name: str | None = None,
    *,
    newest: int = NEWEST,
    runs: RunCache | None = None,
    timeout: float = 5.0,
) -> Catalog:
    """The model's aliases, tags and newest versions (``newest``, plus every aliased one).

    ``runs`` memoizes what each run recorded across calls (a run's data does not change
    once it is registered), so a poller reads each run once. A missing embedded registry
    is a NotFoundError naming `petalops train`.
    """
    model = name or settings.project
    cache: RunCache = runs if runs is not None else {}
    aliases, tags = model_state(settings, name=model, timeout=timeout)
    infos = list_versions(settings, name=model, timeout=timeout)
    chosen = [info for n, info in enumerate(infos) if n < newest or info.aliases]
    lineages = []
    for info in chosen:
        if info.run_id and info.run_id not in cache:
            # A run deleted from the tracking store: the version still shows, without it.
            with contextlib.suppress(PetalopsError):
                cache[info.run_id] = get_run(settings, info.run_id, timeout)
        lineages.append(VersionLineage(info=info, run=cache.get(info.run_id)))
    return Catalog(name=model, aliases=aliases, tags=tags, versions=lineages)


def gate_checks(settings: Settings, lineage: VersionLineage) -> list[dict[str, Any]]:
    """The quality gate's checks of a version (``name``, ``passed``, ``detail``), from its
    run's gate.json; empty when the run has none or it cannot be read."""
    if not lineage.run_id:
        return []
    try:
        document = read_run_json(settings, lineage.run_id, "gate.json")
    except (PetalopsError, OSError, ValueError):
        return []
    if not isinstance(document, dict):
        return []
    return [
        {"name": str(c.get("name", "")), "passed": bool(c.get("passed")), "detail": c.get("detail")}
        for c in document.get("checks", [])
        if isinstance(c, dict)
    ]


def registry_stamp(settings: Settings) -> tuple[tuple[int, int], ...] | None:
    """The mtime and size of the embedded registry's files, which change with every write
    to it: a poller reads the catalog again only when this does. None for a tracking
    server (read it every time)."""
    db = _sqlite_path(settings.tracking_uri)
    if db is None:
        return None
    stamps = []
    for path in (db, db.with_name(db.name + "-wal")):
        with contextlib.suppress(OSError):
            status = path.stat()
            stamps.append((status.st_mtime_ns, status.st_size))
    return tuple(stamps)
