"""Content-addressed data snapshots: the exact training data of a run, stored by its hash.

A file (CSV / Parquet) is stored once per content hash as the run artifact
``data/snapshot.parquet`` of the first run that trained on it; later runs on the same data
point at that copy (tag ``petalops.data_snapshot = runs:/<run>/data/snapshot.parquet``)
instead of uploading it again. This works the same against the embedded store and a remote
MLflow server with S3 behind it. A local copy under ``.petalops/snapshots/<sha256>.parquet``
is a cache, verified against the hash before use. The bundled Iris set is not copied: it is
recorded as ``sklearn:iris`` with the scikit-learn version and the same content hash.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from petalops.config import IRIS_SOURCE, DataSettings, Settings
from petalops.data.load import Dataset, load_dataset
from petalops.errors import DataError, NotFoundError

SNAPSHOT_TAG = "petalops.data_snapshot"
SNAPSHOT_DIR = "data"
SNAPSHOT_FILE = "snapshot.parquet"
SNAPSHOT_ARTIFACT = f"{SNAPSHOT_DIR}/{SNAPSHOT_FILE}"
RECORD_ARTIFACT = f"{SNAPSHOT_DIR}/snapshot.json"


@dataclass(frozen=True)
class SnapshotRecord:
    """What a run records about its training data."""

    sha256: str
    rows: int
    schema: dict[str, str]
    uri: str  # runs:/<run>/data/snapshot.parquet, or sklearn:iris?scikit-learn=<version>
    kind: str  # "file" or "builtin"
    source: str  # where the data was read from at training time (informational only)
    reused: bool = False  # True when an earlier run already held this snapshot

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "rows": self.rows,
            "schema": self.schema,
            "uri": self.uri,
            "kind": self.kind,
            "source": self.source,
        }


def cache_path(settings: Settings, sha256: str) -> Path:
    return settings.home_dir / "snapshots" / f"{sha256}.parquet"


def builtin_uri() -> str:
    import sklearn

    return f"{IRIS_SOURCE}?scikit-learn={sklearn.__version__}"


def _write_cache(settings: Settings, dataset: Dataset) -> Path:
    """Write the validated frame once per hash (atomic: concurrent writers are harmless)."""
    target = cache_path(settings, dataset.fingerprint.sha256)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", suffix=".parquet", dir=target.parent)
    os.close(fd)
    try:
        dataset.frame.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def find_snapshot_uri(settings: Settings, sha256: str) -> str | None:
    """The URI of an already stored snapshot with this content hash, if any run holds one."""
    from petalops.registry import store

    runs = store.find_runs(
        settings,
        f"tags.`petalops.data_sha256` = '{sha256}' AND tags.`{SNAPSHOT_TAG}` LIKE 'runs:/%'",
        max_results=1,
    )
    return runs[0].tags[SNAPSHOT_TAG] if runs else None


def record_snapshot(settings: Settings, dataset: Dataset, run_id: str) -> SnapshotRecord:
    """Inside the active run: store (or point at) the data snapshot and record it."""
    from petalops.registry import store

    fp = dataset.fingerprint
    reused = False
    if dataset.file_path is None:
        uri, kind = builtin_uri(), "builtin"
    else:
        kind = "file"
        local = _write_cache(settings, dataset)
        found = find_snapshot_uri(settings, fp.sha256)
        if found is not None:
            uri, reused = found, True
        else:
            with tempfile.TemporaryDirectory(prefix="petalops-snapshot-") as tmp:
                staged = Path(tmp) / SNAPSHOT_FILE
                shutil.copyfile(local, staged)
                store.log_artifact(staged, SNAPSHOT_DIR)
            uri = f"runs:/{run_id}/{SNAPSHOT_ARTIFACT}"
    record = SnapshotRecord(
        sha256=fp.sha256,
        rows=fp.rows,
        schema=dict(fp.schema),
        uri=uri,
        kind=kind,
        source=dataset.source,
        reused=reused,
    )
    with tempfile.TemporaryDirectory(prefix="petalops-snapshot-") as tmp:
        path = Path(tmp) / "snapshot.json"
        path.write_text(json.dumps(record.to_json(), indent=2), encoding="utf-8")
        store.log_artifact(path, SNAPSHOT_DIR)
    # Set last: a run carries the tag only once its snapshot is safely stored.
    store.log_run_data({}, {}, {SNAPSHOT_TAG: uri, "petalops.data_rows": str(fp.rows)})
    return record


def _split_runs_uri(uri: str) -> tuple[str, str]:
    rest = uri.removeprefix("runs:/")
    run_id, _, path = rest.partition("/")
    return run_id, path


def _matches(data: DataSettings, path: Path | None, sha256: str) -> bool:
    try:
        return load_dataset(data, path).fingerprint.sha256 == sha256
    except DataError:
        return False


def materialize(settings: Settings, uri: str, sha256: str, data: DataSettings) -> Path | None:
    """A local file holding exactly the recorded data (``None`` for the bundled Iris set).

    Uses the local cache when its content still hashes to ``sha256``, else downloads the
    snapshot from the artifact store. Raises when the data cannot be recovered exactly.
    """
    if uri.startswith(IRIS_SOURCE):
        if not _matches(data.model_copy(update={"source": IRIS_SOURCE}), None, sha256):
            raise DataError(
                f"the Iris set of this scikit-learn differs from the recorded one ({uri}, "
                f"sha256 {sha256[:12]}…); install the recorded scikit-learn version"
            )
        return None
    if uri.startswith("file:"):  # a pre-snapshot version whose original file still matches
        original = Path(uri.removeprefix("file:"))
        if _matches(data, original, sha256):
            return original
        raise DataError(f"{original} no longer holds the recorded data (sha256 {sha256[:12]}…)")
    if not uri.startswith("runs:/"):
        raise NotFoundError(
            f"no data snapshot recorded ({uri or 'missing tag'}) and the original file is gone "
            "or changed; only versions trained since snapshots existed can always be reproduced"
        )
    cached = cache_path(settings, sha256)
    if cached.is_file():
        if _matches(data, cached, sha256):
            return cached
        cached.unlink()  # damaged or edited: fetch the stored copy again
    from petalops.registry import store

    run_id, path = _split_runs_uri(uri)
    with tempfile.TemporaryDirectory(prefix="petalops-snapshot-") as tmp:
        local = store.download_run_artifacts(settings, run_id, path, Path(tmp))
        if not _matches(data, local, sha256):
            raise DataError(
                f"the stored snapshot {uri} does not hash to the recorded {sha256[:12]}…; "
                "the artifact store was modified"
            )
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, cached)
    return cached
