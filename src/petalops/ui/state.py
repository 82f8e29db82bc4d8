"""The control room's one JSON document: registry, rollout, traffic, drift, quality, alerts.

Built from the read model each block exposes, and nothing else of theirs:
`petalops.registry.catalog` (versions, lineage, tags, gate checks), `petalops.rollout.view`
(status, plan, decisions) and `petalops.monitoring.view` (traffic, drift, alerts, live and
estimated accuracy). Each part is read again only when it can have changed:

* the registry once its file changed (a tracking server: every build);
* the rollout and the per-variant traffic when the plan or the aliases change, else every
  ``rollout_seconds`` (the step window reads the prediction log);
* drift, alerts and live accuracy every ``slow_seconds``, the accuracy timeline every
  ``timeline_seconds``.

Under `petalops serve` one process builds it for all the workers of the machine
(`petalops.ui.builder`) and they answer the file (`petalops.ui.document`); an app run in
one process builds it itself (`StateCache`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Any

import orjson

from petalops.config import Settings
from petalops.monitoring.view import MonitorView, guard
from petalops.registry.catalog import (
    Catalog,
    RunCache,
    gate_checks,
    read_catalog,
    registry_stamp,
)
from petalops.rollout.view import RolloutView, plan_text
from petalops.ui.document import Serving, document_path, with_serving

# Seconds a built document is answered as it is; the page polls every POLL_SECONDS.
FRESH_SECONDS = 2.0
POLL_SECONDS = 3.0
# Drift, alerts and accuracy read up to a few thousand rows: refreshed less often.
SLOW_SECONDS = 60.0
# The accuracy timeline (runs of hundreds of rows each, the dearest read of the slow part:
# ~50 ms) is read again at most this often while the aliases are unchanged.
TIMELINE_SECONDS = 180.0
# The rollout and the per-variant traffic are read again at most this often while the plan
# and the aliases are unchanged.
ROLLOUT_SECONDS = 10.0


class Sources:
    """The read models one builder keeps open between builds, and its memos."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runs: RunCache = {}
        self.gates: dict[str, list[dict[str, Any]]] = {}
        self.rollout = RolloutView(settings)
        self.monitor = MonitorView(settings)
        self._catalog: tuple[Any, Catalog] | None = None

    def catalog(self) -> Catalog:
        """The registry's catalog; an embedded store is read again only once its file
        changed (every build otherwise costs connections and queries)."""
        stamp = registry_stamp(self.settings)
        if stamp is not None and self._catalog is not None and stamp == self._catalog[0]:
            return self._catalog[1]
        catalog = read_catalog(self.settings, runs=self.runs)
        if stamp is not None:
            self._catalog = (stamp, catalog)
        return catalog

    def close(self) -> None:
        self.rollout.close()
        self.monitor.close()


def build_state(
    sources: Sources,
    previous: dict[str, Any] | None = None,
    *,
    now: float | None = None,
    slow_seconds: float = SLOW_SECONDS,
    rollout_seconds: float = ROLLOUT_SECONDS,
    timeline_seconds: float = TIMELINE_SECONDS,
) -> dict[str, Any]:
    """The whole page as plain data (see docs/control-room.md for its fields).

    ``previous`` is the last document: its slow part is reused until it is
    ``slow_seconds`` old (the accuracy timeline in it until ``timeline_seconds`` old, while
    the aliases are unchanged), its rollout part while the plan is unchanged and younger
    than ``rollout_seconds``. ``serving`` is left None: the answering worker fills it in
    (`petalops.ui.document.with_serving`).
    """
    now = time.time() if now is None else now
    errors: dict[str, str] = {}
    catalog: Catalog | None = guard(errors, "registry", sources.catalog, None)
    document: dict[str, Any] = {
        "generated": now,
        "model": sources.settings.project,
        "poll_seconds": POLL_SECONDS,
        "serving": None,
        "aliases": catalog.aliases if catalog else {},
        "versions": _versions(sources, catalog) if catalog else [],
        "rollout": None,
        "history": [],
        "traffic": {},
    }
    if catalog is not None:
        raw = plan_text(catalog.tags)
        last = previous or {}
        fresh = (
            last.get("rollout_at") is not None
            and last.get("plan_raw") == raw
            and last.get("aliases") == catalog.aliases
            and now - float(last["rollout_at"]) < rollout_seconds
        )
        if fresh:
            for key in ("rollout", "history", "traffic", "rollout_at", "live_errors"):
                document[key] = last.get(key)
        else:
            document.update(_live(sources, catalog, now))
        document["plan_raw"] = raw
        errors.update(document.get("live_errors") or {})
    slow = (previous or {}).get("slow") or {}
    if not slow or now - float(slow.get("computed", 0)) >= slow_seconds:
        aliases = catalog.aliases if catalog else {}
        kept = None
        if (
            slow.get("timeline_at") is not None
            and now - float(slow["timeline_at"]) < timeline_seconds
            and slow.get("aliases") == aliases
        ):
            kept = {"timeline": slow.get("timeline", []), "timeline_at": slow["timeline_at"]}
        slow = {**sources.monitor.health(aliases, now, timeline=kept), "aliases": aliases}
    errors.update(slow.get("errors", {}))
    document["slow"] = slow
    document["errors"] = errors
    return document


def _live(sources: Sources, catalog: Catalog, now: float) -> dict[str, Any]:
    """The rollout, its decisions and the per-variant traffic."""
    errors: dict[str, str] = {}
    view = sources.rollout
    rollout = guard(errors, "rollout", lambda: view.status(catalog.aliases, catalog.tags), None)
    plan = (rollout or {}).get("plan")
    history = guard(errors, "history", lambda: view.history(plan["rollout_id"]), []) if plan else []
    traffic = guard(errors, "traffic", lambda: sources.monitor.traffic(catalog.aliases, now), {})
    return {
        "rollout": rollout,
        "history": history,
        "traffic": traffic,
        "rollout_at": now,
        "live_errors": errors,
    }


def _versions(sources: Sources, catalog: Catalog) -> list[dict[str, Any]]:
    out = []
    for lineage in catalog.versions:
        entry = lineage.to_json()
        if lineage.version not in sources.gates:
            sources.gates[lineage.version] = gate_checks(sources.settings, lineage)
        entry["gate_checks"] = sources.gates[lineage.version]
        entry["checksum"] = "registered" if lineage.sha256 else "missing"
        out.append(entry)
    return out


def encode(document: dict[str, Any]) -> bytes:
    """The document as JSON (the drift report keys class counts by class index)."""
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def _same(document: dict[str, Any], last: dict[str, Any]) -> bool:
    """Whether ``document`` says what ``last`` said (``generated`` aside)."""
    return encode({**document, "generated": 0}) == encode({**last, "generated": 0})


class Publisher:
    """Builds the document from the last published one and publishes it atomically at
    `document_path`; an flock keeps two builders of one home from building at once."""

    def __init__(
        self, settings: Settings, *, fresh_seconds: float = FRESH_SECONDS, path: Path | None = None
    ) -> None:
        self.settings = settings
        self.fresh_seconds = fresh_seconds
        self.path = path or document_path(settings)
        self.sources = Sources(settings)
        self.builds = 0

    def age(self) -> float:
        """Seconds since the published document was built (inf when there is none)."""
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return float("inf")

    def refresh(self, *, force: bool = False) -> bytes | None:
        """Rebuild unless the published document is fresh (or another builder is at it);
        the published bytes when this call built them."""
        if not force and self.age() < self.fresh_seconds:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_suffix(".lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return None
            if not force and self.age() < self.fresh_seconds:
                return None  # built by another builder while this one waited
            return self.rebuild()

    def rebuild(self) -> bytes:
        """Build the document now (continuing the last one) and publish it; a build that
        found nothing new only marks the published file current (its mtime), so the
        workers keep its ETag and an open tab gets 304s."""
        raw, last = b"", None
        with contextlib.suppress(OSError, orjson.JSONDecodeError):
            raw = self.path.read_bytes()
            last = orjson.loads(raw)
        document = build_state(self.sources, last)
        self.builds += 1
        if last is not None and _same(document, last):
            os.utime(self.path)
            return raw
        body = encode(document)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(body)
        os.replace(temporary, self.path)  # readers see the old file or the new, never half
        return body

    def close(self) -> None:
        self.sources.close()


class StateCache:
    """The document for an app that runs in one process (`petalops ui --control-room`, an
    in-process `create_app`): built in a thread on demand, at most once per
    ``fresh_seconds``, shared with any other process of the home through the file."""

    def __init__(
        self,
        settings: Settings,
        *,
        serving: Serving = lambda: None,
        fresh_seconds: float = FRESH_SECONDS,
        path: Path | None = None,
    ) -> None:
        self.publisher = Publisher(settings, fresh_seconds=fresh_seconds, path=path)
        self.serving = serving
        self.fresh_seconds = fresh_seconds
        self._body = b""
        self._at = 0.0
        self._lock = asyncio.Lock()
        self._answer: tuple[bytes, bytes, bytes] = (b"", b"", b"")

    @property
    def builds(self) -> int:
        return self.publisher.builds

    async def get(self) -> bytes:
        """The newest document as JSON bytes, with this process's ``serving`` in it."""
        if time.monotonic() - self._at >= self.fresh_seconds or not self._body:
            async with self._lock:
                if time.monotonic() - self._at >= self.fresh_seconds or not self._body:
                    self._body = await asyncio.to_thread(self._refresh)
                    self._at = time.monotonic()
        serving = orjson.dumps(self.serving())
        body, key, answer = self._answer
        if body is not self._body or key != serving:
            answer = with_serving(self._body, orjson.loads(serving))
            self._answer = (self._body, serving, answer)
        return answer

    def _refresh(self) -> bytes:
        built = self.publisher.refresh()
        if built is not None:
            return built
        try:
            return self.publisher.path.read_bytes()
        except OSError:  # another builder holds the lock and has published nothing yet
            return self.publisher.rebuild()

    def invalidate(self) -> None:
        """Forget the document (after an action): the next `get` rebuilds it."""
        self._at = 0.0
        with contextlib.suppress(OSError):
            os.utime(self.publisher.path, (0, 0))

    def close(self) -> None:
        self.publisher.close()
