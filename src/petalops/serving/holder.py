"""The runtimes a worker serves, and the reconciliation that swaps them atomically.

A request reads ``holder.snapshot`` once and uses that immutable object to the end, so a
swap (one attribute assignment on the event loop) can never mix two versions inside one
request. Loading, checksum verification and warm-up run in a thread, off the request path;
a failure keeps the last good snapshot serving and is reported in a metric and a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from petalops.errors import (
    IntegrityError,
    NotFoundError,
    PetalopsError,
    RegistryUnavailableError,
    SignatureError,
    UnservableError,
)
from petalops.registry import VersionInfo
from petalops.rollout.routing import TrafficPolicy, choose_variant
from petalops.runtime.model import ModelRuntime
from petalops.serving import metrics
from petalops.serving.accesslog import JsonLog
from petalops.serving.http import HttpError
from petalops.serving.source import Desired, ModelSource

PINNED_VERSIONS = 4
PIN_TAG = "petalops.allow_pin"
TRIGGER_POLL_SECONDS = 0.25


@dataclass(frozen=True, eq=False)
class Served:
    """A loaded, verified and warmed runtime with what the hot path needs precomputed."""

    runtime: ModelRuntime
    name: str
    version: str
    sha256: str
    feature_min: list[float]
    feature_max: list[float]
    loaded_at: float = field(default_factory=time.time)

    @property
    def classes(self) -> list[str]:
        return self.runtime.classes

    @property
    def features(self) -> list[str]:
        return self.runtime.features

    def out_of_range(self, row: list[float]) -> int:
        n = 0
        # zip's strict= keyword is parsed on every call: left out on the hot path.
        for v, lo, hi in zip(row, self.feature_min, self.feature_max):  # noqa: B905
            # categories (strings) and missing values (None) have no range
            if type(v) is float and (v < lo or v > hi):
                n += 1
        return n


@dataclass(frozen=True)
class Snapshot:
    """What one worker serves right now; replaced whole, never mutated."""

    champion: Served | None = None
    challenger: Served | None = None
    previous: Served | None = None
    policy: TrafficPolicy = field(default_factory=TrafficPolicy.none)

    def pick(self, key: str, champion_only: bool = False) -> tuple[Served, str]:
        champion = self.champion
        if champion is None:
            raise not_ready()
        if (
            not champion_only
            and self.challenger is not None
            and choose_variant(self.policy, key) == "challenger"
        ):
            return self.challenger, "challenger"
        return champion, "champion"

    def slots(self) -> list[tuple[str, Served]]:
        out = [("champion", self.champion), ("challenger", self.challenger)]
        out.append(("previous", self.previous))
        return [(name, served) for name, served in out if served is not None]

    def describe(self) -> dict[str, Any]:
        return {
            **{name: served.version for name, served in self.slots()},
            "policy": self.policy.to_dict(),
        }


def not_ready() -> HttpError:
    return HttpError(
        503,
        "no model is loaded yet; wait for GET /readyz to answer 200 (train one with "
        "`petalops train` if the registry is empty)",
        headers=[(b"retry-after", b"1")],
    )


def _may_pin(info: VersionInfo) -> None:
    """Only versions that hold an alias, or carry the allow tag, may be pinned with
    X-Model-Version: any caller could otherwise bypass the traffic split and make every
    worker load (and keep loading) arbitrary old versions."""
    if info.aliases or info.tags.get(PIN_TAG) == "true":
        return
    raise HttpError(
        403,
        f"version {info.version} holds no alias and is not tagged {PIN_TAG}=true, so it "
        f"cannot be pinned; give it an alias, or set that version tag "
        "(MLflow UI, or MlflowClient.set_model_version_tag)",
        "X-Model-Version",
    )


def _no_such_version(version: str) -> NotFoundError:
    return NotFoundError(f"model version {version!r} does not exist", field="version")


def warm(runtime: ModelRuntime) -> None:
    """Run the model on probe rows and check its answers before it takes traffic."""
    probe = runtime.probe_row()
    rows = runtime.probe_rows(32)
    proba = runtime.predict_proba(rows)
    if proba.shape != (32, len(runtime.classes)) or not np.isfinite(proba).all():
        raise IntegrityError(
            f"version {runtime.version} answered probabilities of shape {list(proba.shape)} "
            f"for {len(runtime.classes)} classes; refusing to serve it"
        )
    if not np.allclose(proba.sum(axis=1), 1.0, atol=1e-4):
        raise IntegrityError(
            f"version {runtime.version} answered probabilities that do not sum to 1"
        )
    for _ in range(64):
        label, one = runtime.predict_one(probe)
    if not (0 <= label < len(runtime.classes)) or not math.isclose(sum(one), 1.0, abs_tol=1e-4):
        raise IntegrityError(f"version {runtime.version} failed its warm-up prediction")


def load_served(source: ModelSource, info: VersionInfo) -> Served:
    """Fetch, verify (checksums), open and warm one version. Blocking: run it in a thread."""
    try:
        runtime = source.load(info)
        warm(runtime)
        arm = getattr(runtime, "arm", None)  # test-only fault injection starts after warm-up
        if arm is not None:
            arm()
    except Exception:
        metrics.MODEL_LOADS.labels("error").inc()
        raise
    metrics.MODEL_LOADS.labels("ok").inc()
    return Served(
        runtime=runtime,
        name=info.name,
        version=info.version,
        sha256=info.sha256,
        feature_min=[float(v) for v in runtime.feature_min],
        feature_max=[float(v) for v in runtime.feature_max],
    )


def error_reason(exc: BaseException) -> str:
    if isinstance(exc, RegistryUnavailableError):
        return "registry_unavailable"
    if isinstance(exc, NotFoundError):
        return "not_found"
    if isinstance(exc, SignatureError):
        return "signature"
    if isinstance(exc, IntegrityError):
        return "integrity"
    if isinstance(exc, PetalopsError):
        return "invalid"
    return "load_failed"


class RuntimeHolder:
    """Holds the snapshot of one worker and keeps it reconciled with the source."""

    def __init__(
        self,
        source: ModelSource,
        log: JsonLog,
        reconcile_seconds: float,
        trigger: Path | None = None,
    ) -> None:
        self.source = source
        self.log = log
        self.reconcile_seconds = reconcile_seconds
        self.trigger = trigger
        self.snapshot = Snapshot()
        self.last_reconcile: float | None = None
        self.last_error: str | None = None
        self.reconciles = 0
        # Where the champion came from: the registry, or this home's last-known-good record
        # when the registry was unreachable as the worker started.
        self.origin: str | None = None
        self._remembered: tuple[str, str] | None = None
        self._pinned: OrderedDict[str, Served] = OrderedDict()
        self._pin_locks: dict[str, asyncio.Lock] = {}
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self._trigger_mtime = self._read_trigger()

    @property
    def ready(self) -> bool:
        return self.snapshot.champion is not None

    # -- reconciliation -----------------------------------------------------------------

    async def reconcile(self) -> dict[str, Any]:
        """Bring the snapshot to what the registry says; never raises."""
        async with self._lock:
            self.reconciles += 1
            self.last_reconcile = time.time()
            try:
                desired = await asyncio.to_thread(self.source.desired)
            except Exception as exc:
                self._failed("resolve", exc)
                await self._fall_back(exc)
                return self.status()
            try:
                snapshot = await self._build(desired)
            except Exception as exc:
                self._failed("load", exc)
                await self._fall_back(exc)
                return self.status()
            self.last_error = None
            self.origin = "registry"
            self._swap(snapshot)
            await self._remember(desired.champion)
            return self.status()

    async def _fall_back(self, exc: BaseException) -> None:
        """With nothing serving and the registry unreachable, serve the newest bundle this
        home served before that still verifies against its recorded sha256."""
        if self.snapshot.champion is not None or not isinstance(exc, RegistryUnavailableError):
            return
        try:
            known = await asyncio.to_thread(self.source.last_known_good)
        except Exception as error:
            self._failed("last_known_good", error)
            return
        for info in known:
            try:
                served = await asyncio.to_thread(load_served, self.source, info)
            except Exception as error:
                self._failed("last_known_good", error)
                continue
            self.origin = "last_known_good"
            self._swap(Snapshot(champion=served))
            self.log.event("last_known_good_loaded", version=info.version, sha256=info.sha256)
            return

    async def _remember(self, champion: VersionInfo) -> None:
        key = (champion.version, champion.sha256)
        if key == self._remembered:
            return
        try:
            await asyncio.to_thread(self.source.remember, champion)
        except Exception as exc:  # the record only matters in an outage; serving goes on
            self.log.event("last_known_good_unrecorded", error=repr(exc))
            return
        self._remembered = key

    async def _build(self, desired: Desired) -> Snapshot:
        current = self.snapshot
        champion = await self._obtain(desired.champion, current)
        challenger = previous = None
        if desired.challenger is not None:
            try:
                challenger = await self._obtain(desired.challenger, current)
            except Exception as exc:  # the champion keeps answering everything
                self._failed("load_challenger", exc)
        if desired.previous is not None:
            try:
                previous = await self._obtain(desired.previous, current)
            except Exception as exc:
                self._failed("load_previous", exc)
        policy = desired.policy if challenger is not None else TrafficPolicy.none()
        return Snapshot(champion, challenger, previous, policy)

    async def _obtain(self, info: VersionInfo, current: Snapshot) -> Served:
        for _slot, served in current.slots():
            if served.version == info.version and served.sha256 == info.sha256:
                return served
        pinned = self._pinned.get(info.version)
        if pinned is not None and pinned.sha256 == info.sha256:
            return pinned
        served = await asyncio.to_thread(load_served, self.source, info)
        if served.runtime.opened_in != os.getpid():
            self.log.event(
                "model_inherited", version=info.version, opened_in=served.runtime.opened_in
            )
        return served

    def _swap(self, snapshot: Snapshot) -> None:
        old = self.snapshot
        self.snapshot = snapshot
        before = {(s, v.version) for s, v in old.slots()}
        after = {(s, v.version) for s, v in snapshot.slots()}
        for slot, version in before - after:
            metrics.MODEL_INFO.labels(self.source.name, version, slot).set(0)
        for slot, version in after - before:
            metrics.MODEL_INFO.labels(self.source.name, version, slot).set(1)
        metrics.MODEL_READY.set(1 if snapshot.champion is not None else 0)
        if before != after or old.policy != snapshot.policy:
            self.log.event("model_swapped", before=old.describe(), after=snapshot.describe())

    def _failed(self, stage: str, exc: BaseException) -> None:
        reason = error_reason(exc)
        message = exc.message if isinstance(exc, PetalopsError) else repr(exc)
        repeated = self.last_error == f"{stage}: {message}"
        self.last_error = f"{stage}: {message}"
        metrics.RECONCILE_ERRORS.labels(reason).inc()
        if repeated and isinstance(exc, SignatureError):
            # A refused signature stays refused until the registry changes: one line says
            # so, not one per reconcile interval (the metric still counts every refusal).
            return
        serving = self.snapshot.champion.version if self.snapshot.champion else None
        detail = {"signature": exc.reason} if isinstance(exc, SignatureError) else {}
        self.log.event(
            "reconcile_error",
            stage=stage,
            reason=reason,
            error=message,
            serving_version=serving,
            **detail,
        )

    def status(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "origin": self.origin,
            "serving": self.snapshot.describe(),
            "pinned": list(self._pinned),
            "last_reconcile": self.last_reconcile,
            "last_error": self.last_error,
            "reconciles": self.reconciles,
        }

    # -- versions addressed directly ---------------------------------------------------

    async def version(self, version: str) -> tuple[Served, str]:
        """A version by number (loaded on first use, kept in a small LRU), and its slot."""
        for slot, served in self.snapshot.slots():
            if served.version == version:
                return served, slot
        if not version.isdigit() or len(version) > 9:
            raise _no_such_version(version)
        cached = self._pinned.get(version)
        if cached is not None:
            self._pinned.move_to_end(version)
            return cached, "pinned"
        lock = self._pin_locks.setdefault(version, asyncio.Lock())
        async with lock:
            cached = self._pinned.get(version)
            if cached is None:
                try:
                    info = await asyncio.to_thread(self.source.resolve_version, version)
                    _may_pin(info)
                    cached = await asyncio.to_thread(load_served, self.source, info)
                except NotFoundError:
                    raise _no_such_version(version) from None
                except (RegistryUnavailableError, HttpError):
                    raise
                except PetalopsError as exc:
                    raise UnservableError(
                        f"version {version} cannot be served: {exc.message}"
                    ) from None
                self._pinned[version] = cached
                while len(self._pinned) > PINNED_VERSIONS:
                    self._pinned.popitem(last=False)
        self._pin_locks.pop(version, None)
        return cached, "pinned"

    # -- the background loop -----------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def wait_first_reconcile(self, timeout: float) -> None:
        """Wait (bounded) until the first reconciliation has finished, loaded or not."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), timeout)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def poke_all(self) -> None:
        """Ask every other worker sharing this home to reconcile now (touches the trigger
        file); the caller reconciles this one itself."""
        if self.trigger is None:
            return
        try:
            self.trigger.parent.mkdir(parents=True, exist_ok=True)
            self.trigger.touch()
        except OSError:
            return
        # This worker's own loop must not take its own touch for a second request.
        self._trigger_mtime = self._read_trigger()

    def _read_trigger(self) -> float:
        if self.trigger is None:
            return 0.0
        try:
            return self.trigger.stat().st_mtime
        except OSError:
            return 0.0

    async def _run(self) -> None:
        while True:
            await self.reconcile()
            self._first.set()
            # Retry quickly until the first model is in; then at the configured pace.
            pace = self.reconcile_seconds if self.ready else min(1.0, self.reconcile_seconds)
            due = time.monotonic() + pace
            while time.monotonic() < due:
                await asyncio.sleep(TRIGGER_POLL_SECONDS)
                mtime = self._read_trigger()
                if mtime != self._trigger_mtime:
                    self._trigger_mtime = mtime
                    break
