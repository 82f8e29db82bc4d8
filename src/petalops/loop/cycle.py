"""One retraining cycle as a chain of named steps, each recorded as a ``loop_events`` row:

    cooldown  skip (one "skipped" row per cooldown) while the last trigger is too recent
    trigger   a new cycle id; the alerts, drift and quality that started it
    data      training data plus every labelled live row to ``<home>/retrain/<cycle>.csv``
    train     the pipeline trains, gates and registers it
    register  the version and alias the pipeline gave it
    rollout   the rollout the policy names is started

A step returns the cycle's result when the cycle ends there, ``None`` to go on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from petalops.config import Settings
from petalops.errors import GateFailedError, PetalopsError
from petalops.loop.data import retraining_data
from petalops.loop.events import (
    DATA,
    FAILED,
    GATE_FAILED,
    REGISTERED,
    ROLLOUT_PENDING,
    ROLLOUT_STARTED,
    SKIPPED,
    TRAINED,
    TRIGGER,
)
from petalops.loop.rollouts import RolloutStarter
from petalops.monitoring.alerts import Alert, Evaluation
from petalops.monitoring.store import MonitorStore
from petalops.pipeline.run import TrainResult, train

# (settings, retraining data) → the gated, registered result; raises GateFailedError.
Trainer = Callable[[Settings, Path], TrainResult]

CYCLE_NOTE = "petalops monitor watch: retrain cycle failed in step "


@dataclass
class CycleResult:
    """How a cycle ended (``outcome``) and what it produced."""

    cycle: str
    outcome: str
    version: str | None = None
    run_id: str | None = None
    rollout_id: str | None = None
    data_path: str | None = None
    message: str = ""


@dataclass
class Cycle:
    """What the steps of one cycle share; each step fills in its part."""

    settings: Settings
    store: MonitorStore
    triggers: list[Alert]
    evaluation: Evaluation
    now: float
    trainer: Trainer
    rollout_starter: RolloutStarter
    cycle: str = ""
    data_path: Path | None = None
    trained: TrainResult | None = None
    result: CycleResult | None = None

    @property
    def name(self) -> str:
        return self.settings.project

    def record(self, kind: str, message: str, **fields: Any) -> None:
        """One ``loop_events`` row of this cycle."""
        self.store.add_event(self.cycle, kind, message, model_name=self.name, **fields)


def new_cycle_id(now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    return f"c-{stamp}-{uuid.uuid4().hex[:6]}"


def default_trainer(settings: Settings, data_path: Path) -> TrainResult:
    """The real pipeline: train on ``data_path``, gate, register as challenger."""
    return train(settings, data_path, run_name="petalops-retrain")


def cooldown_left(settings: Settings, store: MonitorStore, now: float) -> float:
    """Seconds until a new cycle may start (``monitor.retrain_cooldown_seconds``)."""
    last = store.last_event_ts(TRIGGER, settings.project)
    if last is None:
        return 0.0
    return max(last + settings.monitor.retrain_cooldown_seconds - now, 0.0)


def check_cooldown(c: Cycle) -> CycleResult | None:
    """End the cycle while the last trigger is more recent than the cooldown."""
    left = cooldown_left(c.settings, c.store, c.now)
    if left <= 0:
        return None
    reasons = [a.name for a in c.triggers]
    last_skip = c.store.last_event_ts(SKIPPED, c.name) or 0.0
    last_trigger = c.store.last_event_ts(TRIGGER, c.name) or 0.0
    if last_skip <= last_trigger:  # one "skipped" row per cooldown, not one per tick
        c.record(
            SKIPPED,
            f"retrain wanted ({', '.join(reasons)}) but in cooldown for "
            f"{left:.0f} s more (monitor.retrain_cooldown_seconds)",
            detail={"reasons": reasons, "cooldown_left": left},
            ts=c.now,
        )
    return CycleResult("", "cooldown", message=f"cooldown: {left:.0f} s left")


def record_trigger(c: Cycle) -> CycleResult | None:
    """Open the cycle: its id, and the alerts, drift and quality that started it."""
    c.cycle = new_cycle_id(c.now)
    evaluation = c.evaluation
    c.record(
        TRIGGER,
        "; ".join(a.message for a in c.triggers),
        model_version=evaluation.reference.rpartition("/")[2] or None,
        detail={
            "reasons": [a.name for a in c.triggers],
            "alerts": [a.to_json() for a in c.triggers],
            "drift": evaluation.drift.to_json() if evaluation.drift is not None else None,
            "quality": [q.to_json() for q in evaluation.quality],
        },
        ts=c.now,
    )
    return None


def gather_data(c: Cycle) -> CycleResult | None:
    """Write the retraining data; end the cycle without enough labelled live rows."""
    c.data_path = c.settings.home_dir / "retrain" / f"{c.cycle}.csv"
    try:
        base_rows, new_rows = retraining_data(c.settings, c.store, c.data_path)
    except PetalopsError as exc:
        c.record(FAILED, f"could not assemble the retraining data: {exc.message}")
        return CycleResult(c.cycle, "failed", message=exc.message)
    min_rows = c.settings.monitor.drift_min_rows
    if new_rows < min_rows:
        message = (
            f"only {new_rows} labelled live rows (need {min_rows}); send feedback "
            "labels (POST /v1/feedback) so a retrain can learn the new data"
        )
        c.record(SKIPPED, message, detail={"labelled_rows": new_rows})
        return CycleResult(c.cycle, "no_labels", message=message)
    c.record(
        DATA,
        f"training data {base_rows} rows + {new_rows} labelled live rows",
        detail={"path": str(c.data_path), "training_rows": base_rows, "labelled_rows": new_rows},
    )
    return None


def retrain(c: Cycle) -> CycleResult | None:
    """Train, gate and register through the pipeline; end the cycle if it refuses."""
    assert c.data_path is not None  # gather_data ran
    try:
        c.trained = c.trainer(c.settings, c.data_path)
    except GateFailedError as exc:
        c.record(GATE_FAILED, exc.message)
        return CycleResult(c.cycle, "gate_failed", data_path=str(c.data_path), message=exc.message)
    except PetalopsError as exc:
        c.record(FAILED, f"training failed: {exc.message}")
        return CycleResult(c.cycle, "failed", data_path=str(c.data_path), message=exc.message)
    trained = c.trained
    metrics = dict(trained.metrics)
    c.record(
        TRAINED,
        f"run {trained.run_id} passed the quality gate"
        + (f" (test accuracy {metrics['accuracy']:.3f})" if "accuracy" in metrics else ""),
        run_id=trained.run_id,
        detail={"metrics": metrics, "gate": trained.gate.to_json()},
    )
    return None


def record_registration(c: Cycle) -> CycleResult | None:
    """Record the version and alias; a new champion (no champion before) ends the cycle."""
    assert c.trained is not None  # retrain ran
    version, run_id = c.trained.version, c.trained.run_id
    alias = c.trained.alias or "challenger"
    signed_by = c.trained.signed_by  # signing.key_file signs a retrain as it does `train`
    c.record(
        REGISTERED,
        f"registered version {version} as {alias}"
        + (f", signed by key {signed_by}" if signed_by else ""),
        model_version=version,
        run_id=run_id,
        detail={"alias": alias, **({"signed_by": signed_by} if signed_by else {})},
    )
    c.result = CycleResult(
        c.cycle, "registered", version=version, run_id=run_id, data_path=str(c.data_path)
    )
    if alias != "challenger" or version is None:
        # No champion existed, so the new version already serves: nothing to roll out.
        c.result.outcome = "champion"
        return c.result
    return None


def begin_rollout(c: Cycle) -> CycleResult | None:
    """Start the rollout ``monitor.rollout_strategy`` names; this step ends every cycle."""
    assert c.result is not None and c.result.version is not None  # record_registration ran
    result, version, run_id = c.result, c.result.version, c.result.run_id
    strategy = c.settings.monitor.rollout_strategy
    if strategy == "none":
        result.message = "monitor.rollout_strategy is none: the challenger waits for a person"
        return result
    try:
        rollout_id = c.rollout_starter(c.settings, version, strategy)
    except PetalopsError as exc:
        c.record(
            FAILED,
            f"could not start the {strategy} rollout: {exc.message}",
            model_version=version,
            run_id=run_id,
        )
        result.outcome = "rollout_failed"
        result.message = exc.message
        return result
    if rollout_id is None:
        c.record(
            ROLLOUT_PENDING,
            f"{strategy} rollout of version {version} intended; no rollout controller is "
            f"available in this install, start it with `petalops rollout start`",
            model_version=version,
            run_id=run_id,
            detail={"strategy": strategy},
        )
        result.outcome = "rollout_pending"
        return result
    c.record(
        ROLLOUT_STARTED,
        f"{strategy} rollout {rollout_id} of version {version}",
        model_version=version,
        run_id=run_id,
        rollout_id=rollout_id,
        detail={"strategy": strategy},
    )
    result.rollout_id = rollout_id
    result.outcome = "rollout_started"
    return result


Step = Callable[[Cycle], CycleResult | None]

STEPS: tuple[tuple[str, Step], ...] = (
    ("cooldown", check_cooldown),
    ("trigger", record_trigger),
    ("data", gather_data),
    ("train", retrain),
    ("register", record_registration),
    ("rollout", begin_rollout),
)


def run_cycle(c: Cycle) -> CycleResult:
    """Run the steps in order until one ends the cycle; an unexpected exception gets a note
    naming the step it came from."""
    for name, run_step in STEPS:
        try:
            ended = run_step(c)
        except Exception as exc:
            exc.add_note(f"{CYCLE_NOTE}{name!r} (cycle {c.cycle or '-'})")
            raise
        if ended is not None:
            return ended
    raise AssertionError("the rollout step ends every cycle")
