"""The snapshot step: the exact training data of a run, stored by its content hash.

A file (CSV / Parquet) is stored once per content hash as the run artifact
``data/snapshot.parquet`` of the first run that trained on it; later runs on the same data
point at that copy (tag ``petalops.data_snapshot = runs:/<run>/data/snapshot.parquet``)
instead of uploading it again. This works the same against the embedded store and a remote
MLflow server with S3 behind it. A local copy under ``.petalops/snapshots/<sha256>.parquet``
is a cache, verified against the hash before use. The bundled Iris set is not copied: it is
recorded as ``sklearn:iris`` with the scikit-learn version and the same content hash.

`petalops.experiments.restore` reads a snapshot back for a reproduction.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from petalops.config import IRIS_SOURCE, Settings
from petalops.data.load import Dataset
from petalops.registry import store
from petalops.registry.resolve import SNAPSHOT_TAG as SNAPSHOT_TAG

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
    """The local cache file of the snapshot with this content hash."""
    return settings.home_dir / "snapshots" / f"{sha256}.parquet"


def builtin_uri() -> str:
    """How the bundled Iris set is recorded: by the scikit-learn version that ships it."""
    # Not at the top: scikit-learn (with SciPy) takes 2-3 s to import here, and neither
    # `train --skip-if-unchanged --data FILE` nor `registry show` needs it otherwise.
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
    runs = store.find_runs(
        settings,
        f"tags.`petalops.data_sha256` = '{sha256}' AND tags.`{SNAPSHOT_TAG}` LIKE 'runs:/%'",
        max_results=1,
    )
    return runs[0].tags[SNAPSHOT_TAG] if runs else None


def record_snapshot(settings: Settings, dataset: Dataset, run_id: str) -> SnapshotRecord:
    """Inside the active run: store (or point at) the data snapshot and record it."""
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
