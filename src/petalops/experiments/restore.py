"""Restore the exact training data of a recorded run from its data snapshot.

`petalops.pipeline.snapshot` records the snapshot while training; this reads it back for a
reproduction, from the local cache when that still hashes right, else from the artifact store.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from petalops.config import IRIS_SOURCE, DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.errors import DataError, NotFoundError
from petalops.pipeline.snapshot import cache_path
from petalops.registry import store


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
