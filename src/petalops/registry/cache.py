"""The home's cache of verified model bundles, and its record of the last-known-good ones.

Layout under ``settings.cache_dir``::

    <model>/<version>/      a bundle directory; it only ever appears whole
    <model>/served.json     the versions this home served as champion, newest first

A fill fetches into a private staging directory, verifies it against the registry's
sha256 and renames it into place: a reader never sees half a bundle, and when several
workers fetch the same version at once the losers of the rename use the winner's copy.
The ``served.json`` record lets a worker that starts while the registry is unreachable
serve the last verified champion (``serving.holder``): it names a version, its sha256 and
its signature tags, and the bundle is re-verified against that sha256 (and, with trusted
keys configured, that signature) before it serves.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from petalops.runtime.bundle import MANIFEST, verify_bundle

RECORD = "served.json"
KEEP = 5  # versions remembered per model: enough to skip a damaged newest copy


@dataclass(frozen=True)
class KnownGood:
    """One verified bundle this home served: which version, its sha256, where it is."""

    name: str
    version: str
    sha256: str
    path: Path
    served_at: float
    # The version's signature tags as the registry held them then (empty: unsigned), so a
    # bundle served from this record passes the same signature check as one from the registry.
    tags: dict[str, str] = field(default_factory=dict)


class BundleCache:
    """Verified bundles under one directory (a home's ``cache/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str, version: str) -> Path:
        """Where version ``version`` of model ``name`` lives once cached."""
        return self.root / name / version

    def cached(self, name: str, version: str) -> Path | None:
        """The cached bundle directory of a version, or None when it is not (whole) there."""
        target = self.path(name, version)
        return target if (target / MANIFEST).is_file() else None

    def fill(self, name: str, version: str, sha256: str, fetch: Callable[[Path], None]) -> Path:
        """The cached bundle of a version; on a miss ``fetch(directory)`` writes it into a
        staging directory, which is verified against ``sha256`` and renamed into place."""
        found = self.cached(name, version)
        if found is not None:
            return found
        target = self.path(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".fill-{version}-", dir=target.parent))
        try:
            bundle = staging / "bundle"
            fetch(bundle)
            verify_bundle(bundle, sha256 or None)
            try:
                os.rename(bundle, target)
            except OSError as exc:
                # Another worker renamed its copy first (a directory rename never
                # replaces a non-empty one): its copy passed the same verification.
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not self.cached(
                    name, version
                ):
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def discard(self, name: str, version: str) -> None:
        """Drop a damaged cached copy so the next load fetches a fresh one. Renamed away
        first: a concurrent reader sees the whole bundle or none, never half of one."""
        target = self.path(name, version)
        if not target.exists():
            return
        trash = target.parent / f".discard-{version}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.rename(target, trash)
        except OSError:
            return  # someone else discarded (or replaced) it already
        shutil.rmtree(trash, ignore_errors=True)

    # -- the last-known-good record ------------------------------------------------------

    def remember(
        self, name: str, version: str, sha256: str, tags: dict[str, str] | None = None
    ) -> None:
        """Record that this home served ``version`` (verified) as its champion, with the
        version tags its signature check read (``tags``)."""
        if not sha256 or self.cached(name, version) is None:
            return
        with self._locked(name):
            entries = [e for e in self._read(name) if e.get("version") != version]
            entry: dict[str, object] = {"version": version, "sha256": sha256}
            entry["served_at"] = time.time()
            if tags:
                entry["tags"] = dict(tags)
            entries.insert(0, entry)
            self._write(name, entries[:KEEP])

    def last_known_good(self, name: str) -> list[KnownGood]:
        """The versions this home served, newest first, whose bundle is still cached."""
        out = []
        for entry in self._read(name):
            version, sha256 = str(entry.get("version", "")), str(entry.get("sha256", ""))
            path = self.cached(name, version) if version.isdigit() and sha256 else None
            if path is not None:
                served_at = entry.get("served_at")
                when = float(served_at) if isinstance(served_at, int | float) else 0.0
                raw = entry.get("tags")
                tags = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
                out.append(KnownGood(name, version, sha256, path, when, tags))
        return out

    def _record(self, name: str) -> Path:
        return self.root / name / RECORD

    def _read(self, name: str) -> list[dict[str, object]]:
        try:
            data = json.loads(self._record(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []

    def _write(self, name: str, entries: list[dict[str, object]]) -> None:
        path = self._record(name)
        fd, temp = tempfile.mkstemp(prefix=".served-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(entries, out)
            os.replace(temp, path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        path = self.root / name / ".served.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield
