"""Resolve a model reference and load its runtime, without importing MLflow when it can.

`import mlflow` costs ~1.7 s; `petalops predict` and every server start would pay it just to
read an alias. For the embedded SQLite store and for an MLflow tracking server we read the
same facts through MLflow's database tables (read-only) or its public REST API, and fall
back to the MLflow client for anything else (and for downloading non-local artifacts).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from petalops.config import Settings
from petalops.errors import (
    IntegrityError,
    NotFoundError,
    PetalopsError,
    RegistryUnavailableError,
)
from petalops.registry.cache import BundleCache
from petalops.registry.signatures import (
    SIGNATURE_TAG,
    SIGNING_KEY_TAG,
    SignatureState,
    check_signature,
    signature_state,
)
from petalops.runtime.bundle import verify_bundle

if TYPE_CHECKING:
    from petalops.registry.store import RunRecord
    from petalops.runtime.model import ModelRuntime

SHA_TAG = "petalops.sha256"
# The run tag naming the data snapshot (pipeline.snapshot writes it, lineage reads it).
SNAPSHOT_TAG = "petalops.data_snapshot"
# MLflow marks a deleted version with this stage before it removes the row.
_DELETED = "Deleted_Internal"
BUNDLE_PATH = "petalops"
_REF = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*?)?(?:@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>\d+))?$"
)


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: str
    run_id: str
    sha256: str
    artifact_uri: str = ""
    aliases: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    created: float = 0.0  # seconds since the epoch (0 where the store does not say)


def parse_ref(ref: str, default_name: str) -> tuple[str, str | None, str | None]:
    """``iris@champion``, ``iris/3``, ``iris``, ``@challenger``, ``3`` -> (name, alias, version)."""
    text = ref.strip()
    if text.isdigit():
        return default_name, None, text
    match = _REF.match(text)
    if not match or not text:
        raise NotFoundError(
            f"model reference {ref!r} is not valid; examples: iris@champion, iris/3, iris"
        )
    name = match["name"] or default_name
    if match["version"]:
        return name, None, match["version"]
    return name, match["alias"] or "champion", None


def _sqlite_path(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :])
    return None


def _not_found(name: str, alias: str | None, version: str | None) -> NotFoundError:
    what = f"alias {alias!r}" if alias else f"version {version}"
    hint = "run `petalops train` first" if alias == "champion" else "see `petalops registry list`"
    return NotFoundError(f"model {name!r} has no {what}; {hint}")


def _resolve_sqlite(db: Path, name: str, alias: str | None, version: str | None) -> VersionInfo:
    if not db.is_file():
        raise NotFoundError(f"no model registry at {db}; run `petalops train` first")
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise RegistryUnavailableError(f"cannot open the registry {db}: {exc}") from None
    try:
        if alias:
            row = con.execute(
                "SELECT version FROM registered_model_aliases WHERE name=? AND alias=?",
                (name, alias),
            ).fetchone()
            if row is None:
                raise _not_found(name, alias, version)
            version = str(row[0])
        row = con.execute(
            "SELECT mv.run_id, COALESCE(r.artifact_uri, '') FROM model_versions mv "
            "LEFT JOIN runs r ON r.run_uuid = mv.run_id WHERE mv.name=? AND mv.version=?",
            (name, int(version or 0)),
        ).fetchone()
        if row is None:
            raise _not_found(name, alias, version)
        run_id, artifact_uri = row
        tags = dict(
            con.execute(
                "SELECT key, value FROM model_version_tags WHERE name=? AND version=?",
                (name, int(version or 0)),
            ).fetchall()
        )
        aliases = [
            r[0]
            for r in con.execute(
                "SELECT alias FROM registered_model_aliases WHERE name=? AND version=?",
                (name, int(version or 0)),
            )
        ]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise NotFoundError(f"the registry at {db} is empty; run `petalops train`") from None
        raise RegistryUnavailableError(f"cannot read the registry {db}: {exc}") from None
    finally:
        con.close()
    return VersionInfo(
        name=name,
        version=str(version),
        run_id=run_id or "",
        sha256=tags.get(SHA_TAG, ""),
        artifact_uri=artifact_uri,
        aliases=sorted(aliases),
        tags=tags,
    )


def _request(url: str, accept: str = "application/json") -> urllib.request.Request:
    """A request carrying the credentials the MLflow client would send (token, or basic auth)."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    elif user:
        pair = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    return request


def _rest_get(base: str, path: str, params: dict[str, str], timeout: float) -> dict[str, Any]:
    url = f"{base.rstrip('/')}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
    request = _request(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 404):
            raise NotFoundError(f"not found in the registry at {base}: {path} {params}") from None
        raise RegistryUnavailableError(f"registry at {base} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RegistryUnavailableError(f"registry at {base} is unreachable: {exc}") from None


def _resolve_rest(
    base: str, name: str, alias: str | None, version: str | None, timeout: float
) -> VersionInfo:
    try:
        if alias:
            data = _rest_get(
                base, "registered-models/alias", {"name": name, "alias": alias}, timeout
            )
        else:
            data = _rest_get(
                base, "model-versions/get", {"name": name, "version": str(version)}, timeout
            )
    except NotFoundError:
        raise _not_found(name, alias, version) from None
    mv = data.get("model_version") or {}
    tags = {t["key"]: t.get("value", "") for t in mv.get("tags", [])}
    return VersionInfo(
        name=name,
        version=str(mv.get("version")),
        run_id=mv.get("run_id", ""),
        sha256=tags.get(SHA_TAG, ""),
        aliases=sorted(mv.get("aliases", [])),
        tags=tags,
    )


def resolve(settings: Settings, ref: str | None = None, timeout: float = 5.0) -> VersionInfo:
    """Find the registry version a reference points to (alias, number or name)."""
    name, alias, version = parse_ref(ref or settings.model_ref, settings.project)
    uri = settings.tracking_uri
    db = _sqlite_path(uri)
    if db is not None:
        return _resolve_sqlite(db, name, alias, version)
    if uri.startswith(("http://", "https://")):
        return _resolve_rest(uri, name, alias, version, timeout)
    from petalops.registry.store import get_version

    return get_version(settings, version or "", alias=alias, name=name)


def _open_sqlite(db: Path, timeout: float) -> sqlite3.Connection:
    """The embedded store, read-only: a missing file is an error, never a new empty store."""
    if not db.is_file():
        raise NotFoundError(f"no model registry at {db}; run `petalops train` first")
    try:
        return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        raise RegistryUnavailableError(f"cannot open the registry {db}: {exc}") from None


def _sqlite_rows(db: Path, query: str, args: tuple[Any, ...], timeout: float) -> list[Any]:
    con = _open_sqlite(db, timeout)
    try:
        return con.execute(query, args).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            raise NotFoundError(f"the registry at {db} is empty; run `petalops train`") from None
        raise RegistryUnavailableError(f"cannot read the registry {db}: {exc}") from None
    finally:
        con.close()


def list_versions(
    settings: Settings, name: str | None = None, timeout: float = 5.0
) -> list[VersionInfo]:
    """Every version of a registered model, newest first, read as cheaply as ``resolve``
    (`petalops registry list` must not pay MLflow's import for a table of tags)."""
    model = name or settings.project
    uri = settings.tracking_uri
    db = _sqlite_path(uri)
    if db is not None:
        versions = _sqlite_rows(
            db,
            "SELECT mv.version, mv.run_id, COALESCE(r.artifact_uri, ''), mv.creation_time "
            "FROM model_versions mv LEFT JOIN runs r ON r.run_uuid = mv.run_id "
            "WHERE mv.name=? AND mv.current_stage != ?",
            (model, _DELETED),
            timeout,
        )
        tags: dict[str, dict[str, str]] = {}
        for version, key, value in _sqlite_rows(
            db, "SELECT version, key, value FROM model_version_tags WHERE name=?", (model,), timeout
        ):
            tags.setdefault(str(version), {})[key] = value
        aliases: dict[str, list[str]] = {}
        for alias, version in _sqlite_rows(
            db,
            "SELECT alias, version FROM registered_model_aliases WHERE name=?",
            (model,),
            timeout,
        ):
            aliases.setdefault(str(version), []).append(alias)
        infos = [
            VersionInfo(
                name=model,
                version=str(version),
                run_id=run_id or "",
                sha256=tags.get(str(version), {}).get(SHA_TAG, ""),
                artifact_uri=artifact_uri,
                aliases=sorted(aliases.get(str(version), [])),
                tags=tags.get(str(version), {}),
                created=float(created or 0) / 1000,
            )
            for version, run_id, artifact_uri, created in versions
        ]
    elif uri.startswith(("http://", "https://")):
        try:
            registered = _rest_get(uri, "registered-models/get", {"name": model}, timeout)
        except NotFoundError:
            return []
        aliases = {}
        for pair in registered.get("registered_model", {}).get("aliases", []):
            aliases.setdefault(str(pair.get("version")), []).append(pair.get("alias", ""))
        infos = []
        params = {"filter": f"name='{model}'", "max_results": "1000"}
        while True:
            page = _rest_get(uri, "model-versions/search", params, timeout)
            for mv in page.get("model_versions", []):
                mv_tags = {t["key"]: t.get("value", "") for t in mv.get("tags", [])}
                infos.append(
                    VersionInfo(
                        name=model,
                        version=str(mv.get("version")),
                        run_id=mv.get("run_id", ""),
                        sha256=mv_tags.get(SHA_TAG, ""),
                        aliases=sorted(aliases.get(str(mv.get("version")), [])),
                        tags=mv_tags,
                        created=float(mv.get("creation_timestamp") or 0) / 1000,
                    )
                )
            if not page.get("next_page_token"):
                break
            params = {**params, "page_token": page["next_page_token"]}
    else:
        from petalops.registry import store

        return store.list_versions(settings, model)
    return sorted(infos, key=lambda i: int(i.version), reverse=True)


def get_run(settings: Settings, run_id: str, timeout: float = 5.0) -> RunRecord:
    """A run's parameters, latest metrics and tags, without MLflow's client where it can."""
    from petalops.registry.store import RunRecord

    uri = settings.tracking_uri
    db = _sqlite_path(uri)
    missing = NotFoundError(f"run {run_id!r} does not exist; see the MLflow UI (`petalops ui`)")
    if db is not None:
        started = _sqlite_rows(
            db, "SELECT start_time FROM runs WHERE run_uuid=?", (run_id,), timeout
        )
        if not started:
            raise missing
        facts = {
            table: dict(
                _sqlite_rows(
                    db, f"SELECT key, value FROM {table} WHERE run_uuid=?", (run_id,), timeout
                )
            )
            for table in ("params", "tags")
        }
        metrics = {
            key: float("nan") if is_nan else float(value)
            for key, value, is_nan in _sqlite_rows(
                db,
                "SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid=?",
                (run_id,),
                timeout,
            )
        }
        return RunRecord(
            run_id=run_id,
            params={k: str(v) for k, v in facts["params"].items()},
            metrics=metrics,
            tags={k: str(v) for k, v in facts["tags"].items()},
            start_time=int(started[0][0] or 0),
        )
    if uri.startswith(("http://", "https://")):
        try:
            run = _rest_get(uri, "runs/get", {"run_id": run_id}, timeout).get("run", {})
        except NotFoundError:
            raise missing from None
        data = run.get("data", {})
        return RunRecord(
            run_id=run_id,
            params={p["key"]: p.get("value", "") for p in data.get("params", [])},
            metrics={m["key"]: float(m.get("value", "nan")) for m in data.get("metrics", [])},
            tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
            start_time=int(run.get("info", {}).get("start_time") or 0),
        )
    from petalops.registry import store

    return store.get_run(settings, run_id)


def read_run_json(settings: Settings, run_id: str, path: str, timeout: float = 10.0) -> Any:
    """A small JSON artifact of a run (gate.json, the config), read from the artifact
    directory or MLflow's artifact proxy without the MLflow client where it can."""
    uri = settings.tracking_uri
    artifact_uri = ""
    db = _sqlite_path(uri)
    if db is not None:
        rows = _sqlite_rows(
            db, "SELECT artifact_uri FROM runs WHERE run_uuid=?", (run_id,), timeout
        )
        artifact_uri = str(rows[0][0] or "") if rows else ""
    elif uri.startswith(("http://", "https://")):
        run = _rest_get(uri, "runs/get", {"run_id": run_id}, timeout)
        artifact_uri = run.get("run", {}).get("info", {}).get("artifact_uri", "")
    local = _file_path(artifact_uri)
    if local is not None:
        file = local / path
        if not file.is_file():
            raise NotFoundError(f"run {run_id} has no artifact {path!r}")
        return json.loads(file.read_text(encoding="utf-8"))
    proxied = _proxy_url(uri, artifact_uri) if artifact_uri else None
    if proxied is not None:
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / Path(path).name
            _download(f"{proxied.removesuffix('/' + BUNDLE_PATH)}/{path}", dest, timeout)
            return json.loads(dest.read_text(encoding="utf-8"))
    from petalops.registry import store

    return store.read_run_json(settings, run_id, path)


def model_state(
    settings: Settings, name: str | None = None, timeout: float = 5.0
) -> tuple[dict[str, str], dict[str, str]]:
    """A registered model's aliases (``{alias: version}``) and tags, read together and as
    cheaply as ``resolve`` (`petalops rollout status` and every controller tick read them).
    An unknown model has neither; a missing embedded store is a NotFoundError."""
    model = name or settings.project
    uri = settings.tracking_uri
    db = _sqlite_path(uri)
    if db is not None:
        aliases = _sqlite_rows(
            db,
            "SELECT alias, version FROM registered_model_aliases WHERE name=?",
            (model,),
            timeout,
        )
        tags = _sqlite_rows(
            db, "SELECT key, value FROM registered_model_tags WHERE name=?", (model,), timeout
        )
        return {str(a): str(v) for a, v in aliases}, {str(k): str(v) for k, v in tags}
    if uri.startswith(("http://", "https://")):
        try:
            data = _rest_get(uri, "registered-models/get", {"name": model}, timeout)
        except NotFoundError:
            return {}, {}
        registered = data.get("registered_model", {})
        return (
            {str(a["alias"]): str(a["version"]) for a in registered.get("aliases", [])},
            {str(t["key"]): str(t.get("value", "")) for t in registered.get("tags", [])},
        )
    from petalops.registry import store

    aliases_of = {}
    for alias in store.ALIASES:
        version = store.alias_version(settings, alias, name=model)
        if version is not None:
            aliases_of[alias] = version
    return aliases_of, store.model_tags(settings, name=model)


def model_tag(settings: Settings, name: str, key: str, timeout: float = 5.0) -> str | None:
    """One registered-model tag (the traffic policy), read as cheaply as ``resolve`` reads
    aliases: every serving worker polls it, and importing MLflow would stall its event loop."""
    uri = settings.tracking_uri
    db = _sqlite_path(uri)
    if db is not None:
        if not db.is_file():
            return None
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
        try:
            data = _rest_get(uri, "registered-models/get", {"name": name}, timeout)
        except NotFoundError:
            return None
        for tag in data.get("registered_model", {}).get("tags", []):
            if tag.get("key") == key:
                return str(tag.get("value", ""))
        return None
    from petalops.registry.store import model_tags

    return model_tags(settings, name).get(key)


def _file_path(artifact_uri: str) -> Path | None:
    if artifact_uri.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlparse(artifact_uri).path))
    if artifact_uri.startswith("/"):
        return Path(artifact_uri)
    return None


def _proxy_url(tracking_uri: str, artifact_uri: str) -> str | None:
    """The HTTP address of a run's artifacts behind MLflow's artifact proxy (``mlflow server
    --serve-artifacts``), or None when they are stored elsewhere (S3 read directly, etc.)."""
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme != "mlflow-artifacts":
        return None
    tracking = urllib.parse.urlparse(tracking_uri)
    # As the MLflow client does: `mlflow-artifacts:/path` lives on the tracking server,
    # `mlflow-artifacts://host:port/path` on that host with the tracking server's scheme.
    root = f"{tracking.scheme}://{parsed.netloc}" if parsed.netloc else tracking_uri.rstrip("/")
    path = urllib.parse.quote(parsed.path.strip("/"))
    return f"{root}/api/2.0/mlflow-artifacts/artifacts/{path}/{BUNDLE_PATH}"


def _download(url: str, dest: Path, timeout: float) -> None:
    """Stream one file to ``dest`` (a model can be hundreds of megabytes)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            urllib.request.urlopen(_request(url, "*/*"), timeout=timeout) as response,
            dest.open("wb") as out,
        ):
            shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as exc:
        raise RegistryUnavailableError(
            f"the artifact proxy answered HTTP {exc.code} for {url}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise RegistryUnavailableError(
            f"the artifact proxy is unreachable at {url}: {exc}"
        ) from None


def _fetch_over_proxy(
    settings: Settings, info: VersionInfo, dest: Path, timeout: float = 30.0
) -> bool:
    """Download a bundle with plain HTTP from an MLflow tracking server's artifact proxy.

    Serving replicas need neither the MLflow client (~1.7 s to import, and with it pandas,
    pyarrow and scikit-learn) nor cloud SDKs for this: the server proxies S3, GCS or a disk.
    The manifest is checked against the version's sha256 before anything it lists is fetched.
    """
    uri = settings.tracking_uri
    if not uri.startswith(("http://", "https://")) or not info.run_id:
        return False
    artifact_uri = info.artifact_uri
    if not artifact_uri:
        run = _rest_get(uri, "runs/get", {"run_id": info.run_id}, timeout)
        artifact_uri = run.get("run", {}).get("info", {}).get("artifact_uri", "")
    base = _proxy_url(uri, artifact_uri)
    if base is None:
        return False
    _download(f"{base}/manifest.json", dest / "manifest.json", timeout)
    manifest = (dest / "manifest.json").read_bytes()
    if info.sha256 and hashlib.sha256(manifest).hexdigest() != info.sha256:
        raise IntegrityError(
            f"the manifest of version {info.version} of {info.name!r} from {base} does not "
            f"match its {SHA_TAG} tag; the artifact store was modified after registration"
        )
    for name in json.loads(manifest).get("files", {}):
        relative = Path(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise IntegrityError(f"the bundle manifest names an unsafe path {name!r}")
        _download(f"{base}/{urllib.parse.quote(name)}", dest / relative, timeout)
    return True


def fetch_bundle(settings: Settings, info: VersionInfo) -> Path:
    """The verified bundle directory of a version, from the local cache or the artifact store:
    checksums against its sha256 tag, and with trusted keys configured, its signature."""
    directory = _fetch_checksummed(settings, info)
    # The signature is checked on every load, cached copy or not: trust is this install's
    # (signing.trusted_keys), not the cache's, and a key removed from it stops a version
    # at its next load.
    check_signature(settings, info, directory)
    return directory


def signature_of(settings: Settings, info: VersionInfo) -> SignatureState:
    """Whether a version is signed, by which key, and whether that verifies here
    (`petalops registry show`); a bundle that cannot be fetched or fails its checksum
    does not verify."""
    try:
        directory = _fetch_checksummed(settings, info)
    except PetalopsError as exc:
        signed = bool(info.tags.get(SIGNATURE_TAG))
        return SignatureState(signed, info.tags.get(SIGNING_KEY_TAG, ""), False, exc.message)
    return signature_state(settings, info, directory)


def _fetch_checksummed(settings: Settings, info: VersionInfo) -> Path:
    """The bundle directory of a version, checked against its sha256 when it was fetched."""

    def fetch(staging: Path) -> None:
        local = _file_path(info.artifact_uri)
        if local is not None and (local / BUNDLE_PATH).is_dir():
            shutil.copytree(local / BUNDLE_PATH, staging)
        elif _fetch_over_proxy(settings, info, staging):
            pass
        else:
            if importlib.util.find_spec("mlflow") is None:
                raise RegistryUnavailableError(
                    f"the artifacts of run {info.run_id} ({info.artifact_uri or 'not proxied'}) "
                    "can only be read with the MLflow client, which this install leaves out: "
                    "run the MLflow server with --serve-artifacts, or use the full image"
                )
            from petalops.registry.store import download_run_artifacts

            with tempfile.TemporaryDirectory(dir=staging.parent) as download:
                downloaded = download_run_artifacts(
                    settings, info.run_id, BUNDLE_PATH, Path(download)
                )
                downloaded.rename(staging)

    return BundleCache(settings.cache_dir).fill(info.name, info.version, info.sha256, fetch)


def open_runtime(settings: Settings, info: VersionInfo) -> ModelRuntime:
    """Fetch (or find in the cache), checksum-verify and open a version already resolved."""
    if not info.sha256:
        raise IntegrityError(
            f"version {info.version} of {info.name!r} has no {SHA_TAG} tag; it was not "
            "registered by petalops and cannot be verified"
        )
    # Imported here: the runtime needs numpy (~0.2 s), which the registry's readers
    # (`registry list/show`, `rollout status`, every controller tick) never do.
    from petalops.runtime.model import open_bundle

    directory = fetch_bundle(settings, info)
    try:
        return open_bundle(directory, info.name, info.version, info.sha256)
    except IntegrityError:
        BundleCache(settings.cache_dir).discard(info.name, info.version)
        raise


def load_runtime(settings: Settings, ref: str | None = None) -> ModelRuntime:
    """Resolve, fetch, checksum-verify and open a model version."""
    return open_runtime(settings, resolve(settings, ref))


def load_profile(settings: Settings, ref: str | None = None) -> dict[str, Any]:
    """The reference profile (training data summary) stored with a version."""
    info = resolve(settings, ref)
    directory = fetch_bundle(settings, info)
    verify_bundle(directory, info.sha256)
    data: dict[str, Any] = json.loads((directory / "profile.json").read_text(encoding="utf-8"))
    return data
