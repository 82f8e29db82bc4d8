"""The control room's one JSON document: registry, rollout, traffic, drift, quality, alerts.

The page polls it every few seconds from any number of tabs, inside the serving workers.
Two layers keep that off /predict's budget:

* `build_state` reads each source once per refresh, without MLflow (`registry.catalog`),
  and the slow part (drift, alerts, live accuracy) only every ``slow_seconds``;
* `StateCache` shares one built document between all the workers of a machine through a
  file in ``home/serve``: the first worker to find it stale rebuilds it (an flock elects
  it), the others answer the file as it is. So N tabs on W workers cost one build per
  ``fresh_seconds``, and none at all while nobody looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from petalops.config import Settings
from petalops.registry.catalog import Catalog, RunData, gate_checks, read_catalog
from petalops.registry.resolve import _sqlite_path
from petalops.rollout.control_plane import PLAN_TAG, RegistryState
from petalops.rollout.routing import TRAFFIC_TAG, TrafficPolicy

# Seconds a built document is answered as it is; the page polls every POLL_SECONDS.
FRESH_SECONDS = 2.0
POLL_SECONDS = 3.0
# Drift, alerts and live accuracy read up to drift_window rows: refreshed less often.
SLOW_SECONDS = 60.0
# The per-variant traffic figures cover this many newest seconds.
TRAFFIC_SECONDS = 60.0
# The newest rows of the last TRAFFIC_SECONDS the per-variant figures are read from.
TRAFFIC_ROWS = 5000
# The rollout (its step window reads every row of the step) and the per-variant traffic are
# read again at most this often while the plan and the aliases are unchanged.
ROLLOUT_SECONDS = 10.0
# Live accuracy points kept (one per slow refresh: four hours at 60 s).
QUALITY_POINTS = 240
LIVE_VARIANTS = ("champion", "challenger")

# What a worker adds about itself: the versions its snapshot serves and their checksums.
Serving = Callable[[], dict[str, Any] | None]


class Sources:
    """The open connections and memos one process keeps between refreshes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runs: dict[str, RunData] = {}
        self.gates: dict[str, list[dict[str, Any]]] = {}
        self.profiles: dict[str, dict[str, Any]] = {}
        self._monitor: Any = None
        self._rollouts: Any = None
        self._catalog: tuple[Any, Catalog] | None = None

    def catalog(self) -> Catalog:
        """The registry's catalog; an embedded store is read again only once its file
        changed (every refresh otherwise costs a connection and six queries)."""
        db = _sqlite_path(self.settings.tracking_uri)
        stamp = None
        if db is not None:
            with contextlib.suppress(OSError):
                stamp = tuple(
                    (p.stat().st_mtime_ns, p.stat().st_size)
                    for p in (db, db.with_name(db.name + "-wal"))
                    if p.exists()
                )
        if stamp is not None and self._catalog is not None and stamp == self._catalog[0]:
            return self._catalog[1]
        catalog = read_catalog(self.settings, runs=self.runs)
        if stamp is not None:
            self._catalog = (stamp, catalog)
        return catalog

    def monitor(self) -> Any:
        if self._monitor is None:
            # Imported here: SQLAlchemy (~300 ms measured) only once someone opens the page.
            from petalops.monitoring.store import MonitorStore

            self._monitor = MonitorStore.from_settings(self.settings)
        return self._monitor

    def rollouts(self) -> Any:
        if self._rollouts is None:
            from petalops.rollout.store import RolloutStore  # SQLAlchemy, as above

            self._rollouts = RolloutStore(self.settings.monitor_url)
        return self._rollouts

    def profile(self, version: str) -> dict[str, Any]:
        """The reference profile of ``version`` (read once: a version never changes)."""
        if version not in self.profiles:
            from petalops.registry.resolve import load_profile

            self.profiles[version] = load_profile(
                self.settings, f"{self.settings.project}/{version}"
            )
        return self.profiles[version]

    def close(self) -> None:
        for store in (self._monitor, self._rollouts):
            if store is not None:
                store.close()
        self._monitor = self._rollouts = None


def _guard(errors: dict[str, str], section: str, read: Callable[[], Any], default: Any) -> Any:
    """One section's value, or ``default`` and a one-line reason: the page shows what it
    can (a missing monitoring database must not blank the registry view)."""
    try:
        return read()
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        errors[section] = f"{type(exc).__name__}: {first}"[:300]
        return default


def build_state(
    sources: Sources,
    previous: dict[str, Any] | None = None,
    serving: dict[str, Any] | None = None,
    *,
    now: float | None = None,
    slow_seconds: float = SLOW_SECONDS,
    rollout_seconds: float = ROLLOUT_SECONDS,
) -> dict[str, Any]:
    """The whole page as plain data (see docs/control-room.md for its fields).

    ``previous`` is the last document: its slow sections are reused until they are
    ``slow_seconds`` old, its rollout section while the plan is unchanged and younger than
    ``rollout_seconds``, and the live accuracy series continues from it.
    """
    settings = sources.settings
    now = time.time() if now is None else now
    errors: dict[str, str] = {}
    catalog: Catalog | None = _guard(errors, "registry", sources.catalog, None)
    document: dict[str, Any] = {
        "generated": now,
        "model": settings.project,
        "poll_seconds": POLL_SECONDS,
        "serving": serving,
        "aliases": catalog.aliases if catalog else {},
        "versions": _versions(sources, catalog, serving) if catalog else [],
        "rollout": None,
        "history": [],
        "traffic": {},
    }
    if catalog is not None:
        state = RegistryState(
            aliases=catalog.aliases,
            traffic=TrafficPolicy.parse(catalog.tags.get(TRAFFIC_TAG, "")),
            traffic_raw=catalog.tags.get(TRAFFIC_TAG, ""),
            plan_raw=catalog.tags.get(PLAN_TAG, ""),
        )
        last = previous or {}
        fresh = (
            last.get("rollout_at") is not None
            and last.get("plan_raw") == state.plan_raw
            and last.get("aliases") == catalog.aliases
            and now - float(last["rollout_at"]) < rollout_seconds
        )
        if fresh:
            for key in ("rollout", "history", "traffic", "rollout_at", "live_errors"):
                document[key] = last.get(key)
        else:
            document.update(_live(sources, state, now))
        document["plan_raw"] = state.plan_raw
        errors.update(document.get("live_errors") or {})
    slow = (previous or {}).get("slow") or {}
    if not slow or now - float(slow.get("computed", 0)) >= slow_seconds:
        slow = _slow(sources, catalog, previous, now, errors)
    else:
        errors.update(slow.get("errors", {}))
    document["slow"] = slow
    document["errors"] = errors
    return document


def _live(sources: Sources, state: RegistryState, now: float) -> dict[str, Any]:
    """The rollout, its decisions and the per-variant traffic: read again when the plan or
    the aliases change, else every ``rollout_seconds`` (each reads the prediction log)."""
    errors: dict[str, str] = {}
    rollout = _guard(errors, "rollout", lambda: _rollout(sources, state), None)
    plan = (rollout or {}).get("plan")
    history = (
        _guard(errors, "history", lambda: _history(sources, plan["rollout_id"]), []) if plan else []
    )
    traffic = _guard(errors, "traffic", lambda: _traffic(sources, state.aliases, now), {})
    return {
        "rollout": rollout,
        "history": history,
        "traffic": traffic,
        "rollout_at": now,
        "live_errors": errors,
    }


def _versions(
    sources: Sources, catalog: Catalog, serving: dict[str, Any] | None
) -> list[dict[str, Any]]:
    loaded = {s["version"]: s["sha256"] for s in (serving or {}).get("slots", {}).values() if s}
    out = []
    for lineage in catalog.versions:
        entry = lineage.to_json()
        if lineage.version not in sources.gates:
            sources.gates[lineage.version] = gate_checks(sources.settings, lineage)
        entry["gate_checks"] = sources.gates[lineage.version]
        entry["checksum"] = _checksum(lineage.sha256, loaded.get(lineage.version))
        out.append(entry)
    return out


def _checksum(registered: str, loaded: str | None) -> str:
    """``verified`` (this server loaded the bundle and its sha256 matched the registry),
    ``mismatch``, ``registered`` (a sha256 is recorded, the bundle is not loaded here) or
    ``missing`` (no sha256: the bundle cannot be verified and is never served)."""
    if not registered:
        return "missing"
    if loaded is None:
        return "registered"
    return "verified" if loaded == registered else "mismatch"


def _rollout(sources: Sources, state: RegistryState) -> dict[str, Any]:
    from petalops.rollout.api import rollout_status  # the controller and SQLAlchemy
    from petalops.rollout.plan import RolloutPlan

    status = rollout_status(sources.settings, state=state, store=sources.rollouts())
    plan = RolloutPlan.parse(state.plan_raw)
    if plan is not None and status.get("plan"):
        status["plan"].update(
            weight=plan.weight, n_steps=plan.n_steps, paused=plan.paused, active=plan.active
        )
    return status


def _history(sources: Sources, rollout_id: str) -> list[dict[str, Any]]:
    """The rollout's decisions, oldest first, without their bulky verdict detail."""
    rows = sources.rollouts().history(sources.settings.project, rollout_id=rollout_id, limit=50)
    return [{k: v for k, v in row.items() if k not in ("detail", "model_name")} for row in rows]


def _traffic(sources: Sources, aliases: dict[str, str], now: float) -> dict[str, Any]:
    """Request rate, error rate, p50 and p99 per variant over the last TRAFFIC_SECONDS.

    From the newest TRAFFIC_ROWS rows of that minute, one index-ordered read: at thousands
    of requests a second the figures then cover the last seconds rather than every row of
    the minute, and the read costs the same at any load.
    """
    import sqlalchemy as sa  # loaded with the stores (see Sources.monitor)

    from petalops.database.schema import predictions

    c = predictions.c
    query = (
        sa.select(c.ts, c.variant, c.model_version, c.status, c.latency_ms)
        .where(
            c.model_name == sources.settings.project,
            c.ts >= now - TRAFFIC_SECONDS,
            c.variant.in_(LIVE_VARIANTS),
        )
        .order_by(c.ts.desc())
        .limit(TRAFFIC_ROWS)
    )
    with sources.rollouts().engine.connect() as conn:
        rows = conn.execute(query).all()
    seconds = TRAFFIC_SECONDS
    if len(rows) == TRAFFIC_ROWS:
        seconds = max(now - float(rows[-1][0]), 1e-3)
    out: dict[str, Any] = {}
    for variant in LIVE_VARIANTS:
        version = aliases.get(variant)
        if version is None:
            continue
        mine = [r for r in rows if r[1] == variant and str(r[2]) == version]
        errors = sum(1 for r in mine if int(r[3]) >= 500)
        latencies = np.asarray([r[4] for r in mine if r[4] is not None], dtype=np.float64)
        out[variant] = {
            "version": version,
            "seconds": round(seconds, 3),
            "rate_per_s": round(len(mine) / seconds, 3),
            "requests": len(mine),
            "errors": errors,
            "error_rate": round(errors / len(mine), 4) if mine else None,
            "p50_ms": _percentile(latencies, 50),
            "p99_ms": _percentile(latencies, 99),
        }
    return out


def _percentile(values: np.ndarray[Any, Any], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if len(values) else None


def _slow(
    sources: Sources,
    catalog: Catalog | None,
    previous: dict[str, Any] | None,
    now: float,
    errors: dict[str, str],
) -> dict[str, Any]:
    """Drift with histograms, active alerts and a new live-accuracy point."""
    from petalops.monitoring import alerts

    mine: dict[str, str] = {}
    champion = catalog.aliases.get("champion") if catalog else None
    profile = _guard(mine, "profile", lambda: sources.profile(champion), None) if champion else None
    reference = f"{sources.settings.project}/{champion}" if champion else ""
    evaluation = _guard(
        mine,
        "monitoring",
        lambda: alerts.evaluate(sources.settings, sources.monitor(), profile, reference=reference),
        None,
    )
    series = list(((previous or {}).get("slow") or {}).get("quality", []))
    drift: dict[str, Any] | None = None
    active: list[dict[str, Any]] = []
    if evaluation is not None:
        active = [a.to_json() for a in evaluation.alerts]
        if evaluation.drift is not None and profile is not None:
            drift = evaluation.drift.to_json()
            drift["reference"] = reference
            drift["histograms"] = _guard(
                mine, "histograms", lambda: _histograms(sources, profile), {}
            )
        for row in evaluation.quality:
            series.append({"ts": now, **row.to_json()})
    errors.update(mine)
    return {
        "computed": now,
        "drift": drift,
        "alerts": active,
        "notes": evaluation.notes if evaluation is not None else [],
        "quality": series[-QUALITY_POINTS * len(LIVE_VARIANTS) :],
        "errors": mine,
    }


def _histograms(sources: Sources, profile: dict[str, Any]) -> dict[str, Any]:
    """Reference and live-window shares per bin of each feature, on the profile's bins
    (window values outside them fall in the end bins, so nothing is dropped)."""
    settings = sources.settings
    window = sources.monitor().window(settings.project, rows=settings.monitor.drift_window)
    out: dict[str, Any] = {}
    for index, (name, feature) in enumerate(profile.get("features", {}).items()):
        histogram = feature.get("histogram")
        if not histogram:
            continue
        edges = np.asarray(histogram["edges"], dtype=np.float64)
        reference = np.asarray(histogram["counts"], dtype=np.float64)
        current = np.zeros(len(reference))
        if window.rows and index < window.features.shape[1]:
            values = np.clip(window.features[:, index], edges[0], edges[-1])
            current, _ = np.histogram(values, bins=edges)
        out[name] = {
            "edges": [round(float(e), 6) for e in edges],
            "reference": _shares(reference),
            "window": _shares(np.asarray(current, dtype=np.float64)),
            "window_rows": int(window.rows),
        }
    return out


def _shares(counts: np.ndarray[Any, Any]) -> list[float]:
    total = float(counts.sum())
    return [round(float(c) / total, 5) if total else 0.0 for c in counts]


def encode(document: dict[str, Any]) -> bytes:
    """The document as JSON (the drift report keys class counts by class index)."""
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


class StateCache:
    """The built document, shared by the workers of one machine through a file.

    ``get`` answers from memory while it is fresh, else from the file if another worker
    refreshed it, else rebuilds it in a thread (one worker at a time: an flock).
    """

    def __init__(
        self,
        settings: Settings,
        serving: Serving = lambda: None,
        *,
        fresh_seconds: float = FRESH_SECONDS,
        path: Path | None = None,
    ) -> None:
        self.settings = settings
        self.serving = serving
        self.fresh_seconds = fresh_seconds
        self.path = path or settings.home_dir / "serve" / "control-room.json"
        self.sources = Sources(settings)
        self.builds = 0
        self._body = b""
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> bytes:
        """The newest document as JSON bytes."""
        if time.monotonic() - self._at < self.fresh_seconds and self._body:
            return self._body
        async with self._lock:
            if time.monotonic() - self._at < self.fresh_seconds and self._body:
                return self._body
            self._body = await asyncio.to_thread(self._refresh)
            self._at = time.monotonic()
        return self._body

    def _refresh(self) -> bytes:
        shared = self._read_file()
        if shared is not None and time.time() - shared[0] < self.fresh_seconds:
            return shared[1]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_suffix(".lock").open("a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                if shared is not None:
                    return shared[1]  # another worker is rebuilding it: answer the last one
                fcntl.flock(lock, fcntl.LOCK_EX)  # none yet: wait for that worker's
                shared = self._read_file()
                if shared is not None:
                    return shared[1]
            return self.rebuild(shared[1] if shared else None)

    def rebuild(self, previous: bytes | None = None) -> bytes:
        """Build the document now (from ``previous``'s slow part) and publish it."""
        last = None
        if previous:
            with contextlib.suppress(orjson.JSONDecodeError):
                last = orjson.loads(previous)
        document = build_state(self.sources, last, self.serving())
        body = encode(document)
        self.builds += 1
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(body)
        os.replace(temporary, self.path)  # readers see the old file or the new, never half
        return body

    def invalidate(self) -> None:
        """Forget the document (after an action): the next `get` in any worker rebuilds it."""
        self._at = 0.0
        with contextlib.suppress(OSError):
            os.utime(self.path, (0, 0))

    def _read_file(self) -> tuple[float, bytes] | None:
        try:
            return self.path.stat().st_mtime, self.path.read_bytes()
        except OSError:
            return None

    def close(self) -> None:
        self.sources.close()
