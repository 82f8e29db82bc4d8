"""Every version of the registered model with its lineage, read without MLflow where it can.

The control room reads this every few seconds from inside the serving workers, where
importing MLflow (~1.7 s of CPU under the worker's GIL) would stall predictions. So, as
`petalops.registry.resolve` does for one version: the embedded SQLite store is read
through MLflow's own tables (read-only), a tracking server through its public REST API,
and any other store through the MLflow client (`petalops.registry.store`).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from petalops.config import Settings
from petalops.errors import NotFoundError, RegistryUnavailableError
from petalops.registry.resolve import SHA_TAG, _file_path, _request, _rest_get, _sqlite_path

# How many of the newest versions a catalog lists (aliased ones are always listed).
NEWEST = 20
# MLflow marks a deleted version with this stage before it removes it.
_DELETED = "Deleted_Internal"


@dataclass(frozen=True)
class RunData:
    """What the training run of a version recorded: its metrics, params and tags."""

    artifact_uri: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionLineage:
    """One registered version: aliases, bundle checksum, and where it came from."""

    name: str
    version: str
    run_id: str
    created: float  # seconds since the epoch
    aliases: list[str]
    tags: dict[str, str]
    run: RunData

    @property
    def sha256(self) -> str:
        return self.tags.get(SHA_TAG, "")

    @property
    def data_fingerprint(self) -> str:
        """The content hash of the training data (`petalops.data.fingerprint`)."""
        return self.tags.get("petalops.data_sha256") or self.run.tags.get(
            "petalops.data_sha256", ""
        )

    @property
    def code_commit(self) -> str:
        return self.run.tags.get("petalops.git_commit") or self.run.tags.get(
            "mlflow.source.git.commit", ""
        )

    @property
    def gate(self) -> str:
        """``passed`` or ``failed``: the quality gate's verdict on this version."""
        return self.tags.get("petalops.gate") or self.run.tags.get("petalops.gate", "")

    @property
    def artifact_uri(self) -> str:
        return self.run.artifact_uri

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "run_id": self.run_id,
            "created": self.created,
            "aliases": self.aliases,
            "sha256": self.sha256,
            "data_fingerprint": self.data_fingerprint,
            "data_rows": self.run.tags.get("petalops.data_rows")
            or self.run.params.get("data.rows", ""),
            "data_snapshot": self.run.tags.get("petalops.data_snapshot", ""),
            "code_commit": self.code_commit,
            "gate": self.gate,
            "run_name": self.run.tags.get("mlflow.runName", ""),
            "metrics": dict(sorted(self.run.metrics.items())),
            "params": dict(sorted(self.run.params.items())),
        }


@dataclass(frozen=True)
class Catalog:
    """The registered model: its aliases, its tags (traffic policy, rollout plan) and its
    newest versions, newest first."""

    name: str
    aliases: dict[str, str]
    tags: dict[str, str]
    versions: list[VersionLineage]


RunCache = MutableMapping[str, RunData]


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
    once it is registered), so a poller reads each run once.
    """
    model = name or settings.project
    cache: RunCache = runs if runs is not None else {}
    uri = settings.tracking_uri
    db = _sqlite_path(uri)
    if db is not None:
        return _sqlite_catalog(db, model, newest, cache, timeout)
    if uri.startswith(("http://", "https://")):
        return _rest_catalog(uri, model, newest, cache, timeout)
    return _client_catalog(settings, model, newest, cache)


def run_file(
    settings: Settings, lineage: VersionLineage, path: str, timeout: float = 5.0
) -> bytes | None:
    """A small artifact of the version's run (``gate.json``), or None where it cannot be
    read without the MLflow client (the caller shows what the tags say instead)."""
    uri = lineage.artifact_uri
    local = _file_path(uri)
    if local is not None:
        target = local / path
        return target.read_bytes() if target.is_file() else None
    url = artifact_url(settings.tracking_uri, uri, path)
    if url is None:
        return None
    try:
        with urllib.request.urlopen(_request(url, "*/*"), timeout=timeout) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise RegistryUnavailableError(f"the artifact proxy answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RegistryUnavailableError(f"the artifact proxy is unreachable: {exc}") from None


def artifact_url(tracking_uri: str, artifact_uri: str, path: str) -> str | None:
    """The HTTP address of a run artifact behind MLflow's artifact proxy, or None when the
    run's artifacts are stored elsewhere (as `petalops.registry.resolve` finds bundles)."""
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme != "mlflow-artifacts" or not tracking_uri.startswith(("http://", "https://")):
        return None
    tracking = urllib.parse.urlparse(tracking_uri)
    root = f"{tracking.scheme}://{parsed.netloc}" if parsed.netloc else tracking_uri.rstrip("/")
    where = urllib.parse.quote(parsed.path.strip("/"))
    return f"{root}/api/2.0/mlflow-artifacts/artifacts/{where}/{urllib.parse.quote(path)}"


def gate_checks(settings: Settings, lineage: VersionLineage) -> list[dict[str, Any]]:
    """The quality gate's checks of a version (``name``, ``passed``, ``detail``), from its
    run's gate.json; empty when the run has none or it cannot be read."""
    try:
        raw = run_file(settings, lineage, "gate.json")
    except RegistryUnavailableError:
        return []
    if raw is None:
        return []
    try:
        document = json.loads(raw)
    except ValueError:
        return []
    return [
        {"name": str(c.get("name", "")), "passed": bool(c.get("passed")), "detail": c.get("detail")}
        for c in document.get("checks", [])
        if isinstance(c, dict)
    ]


# -- the embedded store ---------------------------------------------------------------------


def _sqlite_catalog(db: Path, name: str, newest: int, runs: RunCache, timeout: float) -> Catalog:
    if not db.is_file():
        raise NotFoundError(f"no model registry at {db}; run `petalops train` first")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        raise RegistryUnavailableError(f"cannot open the registry {db}: {exc}") from None
    try:
        aliases = {
            str(alias): str(version)
            for alias, version in con.execute(
                "SELECT alias, version FROM registered_model_aliases WHERE name=?", (name,)
            )
        }
        tags = dict(
            con.execute("SELECT key, value FROM registered_model_tags WHERE name=?", (name,))
        )
        aliased = sorted({int(v) for v in aliases.values()})
        rows = con.execute(
            "SELECT version, run_id, creation_time FROM model_versions "
            "WHERE name=? AND current_stage != ? ORDER BY version DESC LIMIT ?",
            (name, _DELETED, newest),
        ).fetchall()
        listed = {int(r[0]) for r in rows}
        missing = [v for v in aliased if v not in listed]
        if missing:
            marks = ",".join("?" * len(missing))
            rows += con.execute(
                "SELECT version, run_id, creation_time FROM model_versions "
                f"WHERE name=? AND version IN ({marks})",
                (name, *missing),
            ).fetchall()
        numbers = [int(r[0]) for r in rows]
        version_tags: dict[int, dict[str, str]] = {n: {} for n in numbers}
        if numbers:
            marks = ",".join("?" * len(numbers))
            for version, key, value in con.execute(
                "SELECT version, key, value FROM model_version_tags "
                f"WHERE name=? AND version IN ({marks})",
                (name, *numbers),
            ):
                version_tags[int(version)][str(key)] = str(value or "")
        run_ids = [str(r[1]) for r in rows if r[1] and str(r[1]) not in runs]
        runs.update(_sqlite_runs(con, run_ids))
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise NotFoundError(f"the registry at {db} is empty; run `petalops train`") from None
        raise RegistryUnavailableError(f"cannot read the registry {db}: {exc}") from None
    finally:
        con.close()
    return Catalog(
        name=name,
        aliases=aliases,
        tags={str(k): str(v or "") for k, v in tags.items()},
        versions=_lineages(
            name,
            [(str(v), str(run or ""), float(created or 0) / 1000) for v, run, created in rows],
            aliases,
            {str(k): t for k, t in version_tags.items()},
            runs,
        ),
    )


def _sqlite_runs(con: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, RunData]:
    """Metrics, params and tags of ``run_ids``, three queries for all of them."""
    if not run_ids:
        return {}
    marks = ",".join("?" * len(run_ids))
    found: dict[str, dict[str, Any]] = {
        r: {"artifact_uri": "", "metrics": {}, "params": {}, "tags": {}} for r in run_ids
    }
    for run, uri in con.execute(
        f"SELECT run_uuid, artifact_uri FROM runs WHERE run_uuid IN ({marks})", run_ids
    ):
        found[run]["artifact_uri"] = str(uri or "")
    for table, key in (("latest_metrics", "metrics"), ("params", "params"), ("tags", "tags")):
        for run, name, value in con.execute(
            f"SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN ({marks})", run_ids
        ):
            found[run][key][str(name)] = float(value) if key == "metrics" else str(value or "")
    return {run: RunData(**data) for run, data in found.items()}


# -- a tracking server ----------------------------------------------------------------------


def _pairs(items: Sequence[dict[str, Any]] | None) -> dict[str, str]:
    return {str(i["key"]): str(i.get("value", "")) for i in items or []}


def _rest_catalog(base: str, name: str, newest: int, runs: RunCache, timeout: float) -> Catalog:
    try:
        model = _rest_get(base, "registered-models/get", {"name": name}, timeout).get(
            "registered_model", {}
        )
    except NotFoundError:
        raise NotFoundError(
            f"model {name!r} is not registered at {base}; run `petalops train` first"
        ) from None
    aliases = {str(a["alias"]): str(a["version"]) for a in model.get("aliases", [])}
    found = _rest_get(
        base,
        "model-versions/search",
        {"filter": f"name='{name}'", "max_results": "1000"},
        timeout,
    ).get("model_versions", [])
    found.sort(key=lambda mv: int(mv.get("version", 0)), reverse=True)
    chosen = [
        mv for i, mv in enumerate(found) if i < newest or str(mv.get("version")) in aliases.values()
    ]
    for mv in chosen:
        run_id = str(mv.get("run_id") or "")
        if run_id and run_id not in runs:
            run = _rest_get(base, "runs/get", {"run_id": run_id}, timeout).get("run", {})
            data = run.get("data", {})
            runs[run_id] = RunData(
                artifact_uri=str(run.get("info", {}).get("artifact_uri", "")),
                metrics={str(m["key"]): float(m["value"]) for m in data.get("metrics", [])},
                params=_pairs(data.get("params")),
                tags=_pairs(data.get("tags")),
            )
    return Catalog(
        name=name,
        aliases=aliases,
        tags=_pairs(model.get("tags")),
        versions=_lineages(
            name,
            [
                (
                    str(mv.get("version")),
                    str(mv.get("run_id") or ""),
                    float(mv.get("creation_timestamp", 0)) / 1000,
                )
                for mv in chosen
            ],
            aliases,
            {str(mv.get("version")): _pairs(mv.get("tags")) for mv in chosen},
            runs,
        ),
    )


# -- any other store: the MLflow client -----------------------------------------------------


def _client_catalog(settings: Settings, name: str, newest: int, runs: RunCache) -> Catalog:
    from petalops.registry import store  # MLflow: only for stores read no other way

    infos = store.list_versions(settings, name=name)
    aliases = {alias: info.version for info in infos for alias in info.aliases}
    chosen = [i for n, i in enumerate(infos) if n < newest or i.aliases]
    for info in chosen:
        if info.run_id and info.run_id not in runs:
            record = store.get_run(settings, info.run_id)
            runs[info.run_id] = RunData(
                artifact_uri=str(getattr(record, "artifact_uri", "") or ""),
                metrics=dict(record.metrics),
                params=dict(record.params),
                tags=dict(record.tags),
            )
    return Catalog(
        name=name,
        aliases=aliases,
        tags=store.model_tags(settings, name=name),
        versions=_lineages(
            name,
            [(i.version, i.run_id, 0.0) for i in chosen],
            aliases,
            {i.version: dict(i.tags) for i in chosen},
            runs,
        ),
    )


def _lineages(
    name: str,
    rows: Sequence[tuple[str, str, float]],
    aliases: dict[str, str],
    tags: dict[str, dict[str, str]],
    runs: RunCache,
) -> list[VersionLineage]:
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(version, []).append(alias)
    out = [
        VersionLineage(
            name=name,
            version=version,
            run_id=run_id,
            created=created,
            aliases=sorted(by_version.get(version, [])),
            tags=tags.get(version, {}),
            run=runs.get(run_id, RunData()),
        )
        for version, run_id, created in rows
    ]
    return sorted(out, key=lambda v: int(v.version), reverse=True)
