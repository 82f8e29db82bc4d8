"""`petalops monitor watch`: evaluate the alert conditions, and with ``--retrain`` close the loop.

A retraining cycle: an alert in ``RETRAIN_TRIGGERS`` fires → cooldown check → training
data plus every labelled live row is written to ``<home>/retrain/<cycle>.csv`` → the
pipeline trains, gates and registers it as ``challenger`` → the rollout the policy names
is started. Each step is a row of ``loop_events`` (what triggered it, which data, which
run, which version, which rollout), so `petalops monitor status` can show why it happened.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from petalops.errors import GateFailedError, NotFoundError, PetalopsError
from petalops.monitoring.alerts import RETRAIN_TRIGGERS, Alert, Evaluation, evaluate, post_webhook
from petalops.monitoring.store import MonitorStore

log = logging.getLogger(__name__)

# Kinds of loop_events rows.
TRIGGER = "trigger"
SKIPPED = "skipped"
DATA = "data"
TRAINED = "trained"
GATE_FAILED = "gate_failed"
REGISTERED = "registered"
ROLLOUT_STARTED = "rollout_started"
ROLLOUT_PENDING = "rollout_pending"
ROLLOUT_OUTCOME = "rollout_outcome"
FAILED = "failed"

REPEAT_SECONDS = 3600.0

Trainer = Callable[[Any, Path], Any]
RolloutStarter = Callable[[Any, str, str], str | None]


@dataclass
class CycleResult:
    cycle: str
    outcome: str
    version: str | None = None
    run_id: str | None = None
    rollout_id: str | None = None
    data_path: str | None = None
    message: str = ""


@dataclass
class TickResult:
    evaluation: Evaluation
    cycle: CycleResult | None = None
    webhook: bool | None = None
    events: list[str] = field(default_factory=list)


def new_cycle_id(now: float) -> str:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%d-%H%M%S")
    return f"c-{stamp}-{uuid.uuid4().hex[:6]}"


def default_trainer(settings: Any, data_path: Path) -> Any:
    """The real pipeline: train on ``data_path``, gate, register as challenger."""
    from petalops.pipeline.run import train

    return train(settings, data_path, run_name="petalops-retrain")


def default_rollout_starter(settings: Any, version: str, strategy: str) -> str | None:
    """Start the rollout the policy names through the rollout block's library function."""
    try:
        from petalops.rollout.controller import start_rollout
    except ImportError:
        return None
    rollout_id = start_rollout(settings, version=version, strategy=strategy)
    return str(rollout_id) if rollout_id is not None else None


def retraining_data(settings: Any, store: MonitorStore, path: Path) -> tuple[int, int]:
    """Write training data + labelled live rows as one CSV; (training rows, new rows)."""
    import numpy as np
    import pandas as pd

    from petalops.data.load import load_dataset

    dataset = load_dataset(settings.data)
    x_new, y_new = store.labelled_rows(settings.project)
    base = pd.DataFrame(dataset.x, columns=dataset.features)
    base[settings.data.target] = [dataset.classes[int(i)] for i in dataset.y]
    if len(y_new) and x_new.shape[1] != len(dataset.features):
        raise PetalopsError(
            f"labelled live rows have {x_new.shape[1]} features, the training data "
            f"{len(dataset.features)}; retraining needs the same schema"
        )
    fresh = pd.DataFrame(x_new.reshape(len(y_new), len(dataset.features)), columns=dataset.features)
    valid = (y_new >= 0) & (y_new < len(dataset.classes))
    fresh = fresh[valid]
    fresh[settings.data.target] = [dataset.classes[int(i)] for i in np.asarray(y_new)[valid]]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.concat([base, fresh], ignore_index=True).to_csv(path, index=False)
    return len(base), len(fresh)


class Watcher:
    """One `monitor watch` process: evaluate → log / webhook → maybe retrain → record."""

    def __init__(
        self,
        settings: Any,
        store: MonitorStore,
        *,
        retrain: bool | None = None,
        server_url: str | None = None,
        webhook_url: str | None = None,
        trainer: Trainer = default_trainer,
        rollout_starter: RolloutStarter = default_rollout_starter,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[Alert], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.retrain = settings.monitor.retrain if retrain is None else retrain
        self.server_url = server_url
        self.webhook_url = webhook_url if webhook_url is not None else settings.monitor.webhook_url
        self.trainer = trainer
        self.rollout_starter = rollout_starter
        self.clock = clock
        self.on_alert = on_alert
        self._dropped_seen: dict[str, int] = {}
        self._notified: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    @property
    def name(self) -> str:
        return str(self.settings.project)

    def _profile(self) -> tuple[dict[str, Any] | None, str]:
        from petalops.registry import load_profile, resolve

        try:
            info = resolve(self.settings, f"{self.name}@champion")
            return load_profile(self.settings, f"{self.name}/{info.version}"), (
                f"{self.name}/{info.version}"
            )
        except NotFoundError:
            return None, ""

    def tick(self) -> TickResult:
        now = self.clock()
        profile, reference = self._profile()
        evaluation = evaluate(
            self.settings,
            self.store,
            profile,
            reference=reference,
            now=now,
            server_url=self.server_url,
            dropped_before=self._dropped_seen,
        )
        result = TickResult(evaluation)
        # Like Alertmanager: notify when an alert starts firing (again every REPEAT_SECONDS
        # while it lasts) and when it resolves, not on every check.
        current = {alert.key: alert for alert in evaluation.alerts}
        fresh = [
            alert
            for key, alert in current.items()
            if now - self._notified.get(key, -REPEAT_SECONDS) >= REPEAT_SECONDS
        ]
        resolved = [key for key in self._notified if key not in current]
        for alert in fresh:
            self._notified[alert.key] = now
            log.warning("ALERT %s: %s", alert.name, alert.message)
            if self.on_alert is not None:
                self.on_alert(alert)
        for key in resolved:
            del self._notified[key]
            log.info("RESOLVED %s", key[0])
        if (fresh or resolved) and self.webhook_url:
            result.webhook = post_webhook(
                self.webhook_url, fresh, resolved=[key[0] for key in resolved]
            )
        self.track_rollouts()
        triggers = [a for a in evaluation.alerts if a.name in RETRAIN_TRIGGERS]
        if self.retrain and triggers:
            result.cycle = self.run_cycle(triggers, evaluation, now)
        return result

    def track_rollouts(self) -> None:
        """Record the outcome of rollouts this loop started once the controller ends them."""
        try:
            pending = self.store.open_rollouts(self.name)
            if not pending:
                return
            from petalops.rollout.control_plane import ControlPlane
            from petalops.rollout.plan import RolloutPlan

            plan = RolloutPlan.parse(ControlPlane(self.settings).read().plan_raw)
        except Exception:  # the registry may be down; try again next tick
            log.warning("could not read the rollout state", exc_info=True)
            return
        for event in pending:
            outcome: str
            if plan is not None and plan.rollout_id == event["rollout_id"]:
                if plan.active:
                    continue
                outcome, reason = plan.phase, plan.reason
            else:
                outcome = "superseded"
                reason = "another rollout replaced it before it finished"
            self.store.add_event(
                event["cycle"],
                ROLLOUT_OUTCOME,
                f"rollout {event['rollout_id']} of version {event['model_version']}: {outcome}"
                + (f" ({reason})" if reason else ""),
                model_name=self.name,
                model_version=event["model_version"],
                run_id=event["run_id"],
                rollout_id=event["rollout_id"],
                detail={"outcome": outcome, "reason": reason},
            )

    def cooldown_left(self, now: float) -> float:
        last = self.store.last_event_ts(TRIGGER, self.name)
        if last is None:
            return 0.0
        return max(last + self.settings.monitor.retrain_cooldown_seconds - now, 0.0)

    def run_cycle(self, triggers: list[Alert], evaluation: Evaluation, now: float) -> CycleResult:
        """One retraining cycle, every step recorded in ``loop_events``."""
        m = self.settings.monitor
        left = self.cooldown_left(now)
        reasons = [a.name for a in triggers]
        if left > 0:
            last_skip = self.store.last_event_ts(SKIPPED, self.name) or 0.0
            last_trigger = self.store.last_event_ts(TRIGGER, self.name) or 0.0
            if last_skip <= last_trigger:  # one "skipped" row per cooldown, not one per tick
                self.store.add_event(
                    "",
                    SKIPPED,
                    f"retrain wanted ({', '.join(reasons)}) but in cooldown for "
                    f"{left:.0f} s more (monitor.retrain_cooldown_seconds)",
                    model_name=self.name,
                    detail={"reasons": reasons, "cooldown_left": left},
                    ts=now,
                )
            return CycleResult("", "cooldown", message=f"cooldown: {left:.0f} s left")

        cycle = new_cycle_id(now)
        record = self.store.add_event
        record(
            cycle,
            TRIGGER,
            "; ".join(a.message for a in triggers),
            model_name=self.name,
            model_version=evaluation.reference.rpartition("/")[2] or None,
            detail={
                "reasons": reasons,
                "alerts": [a.to_json() for a in triggers],
                "drift": evaluation.drift.to_json() if evaluation.drift is not None else None,
                "quality": [q.to_json() for q in evaluation.quality],
            },
            ts=now,
        )
        data_path = self.settings.home_dir / "retrain" / f"{cycle}.csv"
        try:
            base_rows, new_rows = retraining_data(self.settings, self.store, data_path)
        except PetalopsError as exc:
            record(
                cycle,
                FAILED,
                f"could not assemble the retraining data: {exc.message}",
                model_name=self.name,
            )
            return CycleResult(cycle, "failed", message=exc.message)
        if new_rows < m.drift_min_rows:
            message = (
                f"only {new_rows} labelled live rows (need {m.drift_min_rows}); send feedback "
                "labels (POST /v1/feedback) so a retrain can learn the new data"
            )
            record(
                cycle, SKIPPED, message, model_name=self.name, detail={"labelled_rows": new_rows}
            )
            return CycleResult(cycle, "no_labels", message=message)
        record(
            cycle,
            DATA,
            f"training data {base_rows} rows + {new_rows} labelled live rows",
            model_name=self.name,
            detail={"path": str(data_path), "training_rows": base_rows, "labelled_rows": new_rows},
        )
        try:
            trained = self.trainer(self.settings, data_path)
        except GateFailedError as exc:
            record(cycle, GATE_FAILED, exc.message, model_name=self.name)
            return CycleResult(cycle, "gate_failed", data_path=str(data_path), message=exc.message)
        except PetalopsError as exc:
            record(cycle, FAILED, f"training failed: {exc.message}", model_name=self.name)
            return CycleResult(cycle, "failed", data_path=str(data_path), message=exc.message)
        version = getattr(trained, "version", None)
        run_id = getattr(trained, "run_id", None)
        metrics = dict(getattr(trained, "metrics", {}) or {})
        gate = getattr(trained, "gate", None)
        record(
            cycle,
            TRAINED,
            f"run {run_id} passed the quality gate"
            + (f" (test accuracy {metrics['accuracy']:.3f})" if "accuracy" in metrics else ""),
            model_name=self.name,
            run_id=run_id,
            detail={"metrics": metrics, "gate": gate.to_json() if gate is not None else None},
        )
        alias = getattr(trained, "alias", None) or "challenger"
        record(
            cycle,
            REGISTERED,
            f"registered version {version} as {alias}",
            model_name=self.name,
            model_version=version,
            run_id=run_id,
            detail={"alias": alias},
        )
        result = CycleResult(
            cycle, "registered", version=version, run_id=run_id, data_path=str(data_path)
        )
        if alias != "challenger" or version is None:
            # No champion existed, so the new version already serves: nothing to roll out.
            result.outcome = "champion"
            return result
        strategy = m.rollout_strategy
        if strategy == "none":
            result.message = "monitor.rollout_strategy is none: the challenger waits for a person"
            return result
        try:
            rollout_id = self.rollout_starter(self.settings, version, strategy)
        except PetalopsError as exc:
            record(
                cycle,
                FAILED,
                f"could not start the {strategy} rollout: {exc.message}",
                model_name=self.name,
                model_version=version,
                run_id=run_id,
            )
            result.outcome = "rollout_failed"
            result.message = exc.message
            return result
        if rollout_id is None:
            record(
                cycle,
                ROLLOUT_PENDING,
                f"{strategy} rollout of version {version} intended; no rollout controller is "
                f"available in this install, start it with `petalops rollout start`",
                model_name=self.name,
                model_version=version,
                run_id=run_id,
                detail={"strategy": strategy},
            )
            result.outcome = "rollout_pending"
            return result
        record(
            cycle,
            ROLLOUT_STARTED,
            f"{strategy} rollout {rollout_id} of version {version}",
            model_name=self.name,
            model_version=version,
            run_id=run_id,
            rollout_id=rollout_id,
            detail={"strategy": strategy},
        )
        result.rollout_id = rollout_id
        result.outcome = "rollout_started"
        return result

    def run(
        self,
        *,
        interval: float | None = None,
        iterations: int | None = None,
        on_tick: Callable[[TickResult], None] | None = None,
    ) -> None:
        """Tick every ``interval`` seconds (``monitor.watch_seconds``) until interrupted."""
        pause = interval if interval is not None else self.settings.monitor.watch_seconds
        done = 0
        while iterations is None or done < iterations:
            started = time.monotonic()
            try:
                result = self.tick()
            except PetalopsError as exc:
                log.error("watch: %s", exc.message)
            except Exception:  # a transient store or registry failure must not end the watch
                log.exception("watch: check failed; retrying in %.0f s", pause)
            else:
                if on_tick is not None:
                    on_tick(result)
            done += 1
            if iterations is not None and done >= iterations:
                break
            time.sleep(max(pause - (time.monotonic() - started), 0.0))
