"""The control room's document as a serving worker answers it, without building it.

Under `petalops serve` one process builds the document for the whole machine
(`petalops.ui.builder`) and publishes it as a file; a worker's answer to ``GET /ui/state``
is that file with what the worker itself serves filled in (its snapshot's versions and
checksums), memoized until either changes, with an ETag: a tab whose copy is current gets
a 304 and no body. So any number of tabs cost a worker a ``stat`` per poll and one
re-encode per build, and the build itself runs off every worker's GIL.

The worker also marks the document wanted (a file's mtime, at most once a second): the
builder builds only while someone looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from petalops.config import Settings

# Set by `petalops serve` for its workers when the builder runs: the document's path.
DOCUMENT_ENV = "_PETALOPS_CONTROL_ROOM_DOCUMENT"
# A worker marks the document wanted at most this often.
WANT_EVERY = 1.0
# A document older than this was built before the last idle spell: wait for a new one.
STALE_SECONDS = 10.0
# How long a request waits for the builder to publish a current document.
WAIT_SECONDS = 15.0

# What a worker adds about itself: the versions its snapshot serves and their checksums.
Serving = Callable[[], dict[str, Any] | None]


def document_path(settings: Settings) -> Path:
    """Where the built document is published for the workers of this home."""
    return settings.home_dir / "serve" / "control-room.json"


def wanted_path(document: Path) -> Path:
    """The file whose mtime says when a tab last asked for ``document``."""
    return document.with_suffix(".wanted")


def with_serving(body: bytes, serving: dict[str, Any] | None) -> bytes:
    """The built document with ``serving`` (this process's slots and traffic) and each
    version's checksum status as this process can tell it: ``verified`` (loaded here and
    its sha256 matched the registry), ``mismatch``, or the builder's ``registered`` /
    ``missing``."""
    if serving is None:
        return body
    document = orjson.loads(body)
    document["serving"] = serving
    loaded = {s["version"]: s["sha256"] for s in serving.get("slots", {}).values() if s}
    for version in document.get("versions", []):
        mine = loaded.get(version.get("version"))
        if mine is not None and version.get("sha256"):
            version["checksum"] = "verified" if mine == version["sha256"] else "mismatch"
    return orjson.dumps(document)


def etag_of(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'


class PublishedDocument:
    """One worker's view of the published document."""

    def __init__(self, path: Path, serving: Serving = lambda: None) -> None:
        self.path = path
        self.wanted = wanted_path(path)
        self.serving = serving
        self.reads = 0
        self._wanted_at = 0.0
        self._key: tuple[Any, ...] | None = None
        self._answer = (b"", b"")

    def want(self) -> None:
        """Tell the builder someone looks (at most once per WANT_EVERY)."""
        now = time.monotonic()
        if now - self._wanted_at < WANT_EVERY:
            return
        self._wanted_at = now
        try:
            os.utime(self.wanted)
        except FileNotFoundError:
            self.wanted.parent.mkdir(parents=True, exist_ok=True)
            self.wanted.touch()

    def _stamp(self) -> tuple[int, int, float] | None:
        """The published file's inode, mtime_ns and mtime: each publish is a new file
        (``os.replace``), so its inode tells two documents apart even within one mtime
        tick; its mtime says when the builder last found it current."""
        try:
            status = self.path.stat()
        except OSError:
            return None
        return status.st_ino, status.st_mtime_ns, status.st_mtime

    async def get(self) -> tuple[bytes, bytes] | None:
        """``(body, etag)`` of the current document, or None when the builder has not
        published one within WAIT_SECONDS."""
        self.want()
        stamp = self._stamp()
        if stamp is None or time.time() - stamp[2] > STALE_SECONDS:
            stamp = await self._wait(stamp)
            if stamp is None:
                return None
        serving = self.serving()
        # The inode alone: the builder only touches the file when a build found nothing new.
        key = (stamp[0], orjson.dumps(serving))
        if key != self._key:
            try:
                body = with_serving(self.path.read_bytes(), serving)
            except (OSError, orjson.JSONDecodeError):
                return self._answer if self._key is not None else None
            self.reads += 1
            self._key, self._answer = key, (body, etag_of(body))
        return self._answer

    async def _wait(self, stamp: tuple[int, int, float] | None) -> tuple[int, int, float] | None:
        """Poll (off the event loop's way: asyncio.sleep) for a newer document."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            self.want()
            newer = self._stamp()
            if newer is not None and (stamp is None or newer[:2] != stamp[:2]):
                return newer
        return stamp  # an old document beats none: the page says when it was built

    def invalidate(self) -> None:
        """After an action: the builder rebuilds at once (the document looks ancient)."""
        self._wanted_at = 0.0
        self.want()
        with contextlib.suppress(OSError):
            os.utime(self.path, (0, 0))
