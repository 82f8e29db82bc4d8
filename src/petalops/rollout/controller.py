"""The rollout controller: the loop, and the state machine that moves a plan through its phases.

* ``Controller(settings).run(stop)`` is the loop (`petalops rollout run`); every tick it
  renews its lease, applies pending promote/abort/pause/resume commands, repairs the
  traffic tag from the plan and judges the current step (a paused plan is not judged).
* ``start_in_background(settings)`` runs that loop in a daemon thread, for embedding in
  `petalops serve`; with several workers each starts one and the lease lets one act.

A plan goes warming → running (or flipped) → promoting → promoted, or → rolling_back →
rolled_back / aborted; a shadow that passes ends ``passed``. What differs between
strategies (the first step, the weights, what a passed step leads to) is asked of the
plan's strategy (`petalops.rollout.strategies`), which answers with the moves of this
controller it needs (``step_to``, ``stand_down``, ``promote``, ``roll_back``). Starting a
rollout and the other commands behind the CLI are in `petalops.rollout.api`.

Everything the controller knows is in the registry (plan tag ``petalops.rollout``, traffic
tag ``petalops.traffic``, aliases) and in the monitoring database (history, lease), so a
controller that dies is replaced by starting another: it resumes from the plan.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from petalops.config import Settings
from petalops.errors import ConfigError, ConflictError, PetalopsError
from petalops.health import beat
from petalops.rollout import history, metrics
from petalops.rollout.analysis import Thresholds, Verdict, decide
from petalops.rollout.control_plane import ControlPlane, RegistryState
from petalops.rollout.lease import FencedPlane, Lease, holder_id
from petalops.rollout.plan import RolloutPlan, same_traffic, stamp, traffic_for
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.smoke import SmokeResult, smoke_test
from petalops.rollout.store import RolloutStore
from petalops.rollout.strategies.registry import of as strategy_of
from petalops.rollout.window import judge_window, registry_calibrations

log = logging.getLogger("petalops.rollout")

SmokeTest = Callable[[Settings, str, str, Thresholds], SmokeResult]


class Controller:
    """One controller for the settings' registered model."""

    def __init__(
        self,
        settings: Settings,
        *,
        holder: str | None = None,
        plane: ControlPlane | None = None,
        store: RolloutStore | None = None,
        clock: Callable[[], float] = time.time,
        smoke: SmokeTest = smoke_test,
    ) -> None:
        self.settings = settings
        self.name = settings.project
        self.store = store or RolloutStore(settings.monitor_url)
        self.holder = holder or holder_id()
        self.lease = Lease(self.store, settings, self.holder)
        self.plane = FencedPlane(plane or ControlPlane(settings), self.lease.renew, self.holder)
        self.clock = clock
        self.smoke = smoke
        self.calibration_of = registry_calibrations(settings)  # estimated accuracy

    # -- the loop ---------------------------------------------------------------------------

    def tick(self) -> RolloutPlan | None:
        """One pass: lease, commands, repair, judge. Returns the plan after it (None: standby)."""
        if not self.lease.renew():
            return None
        plan, state = self._apply_pending_commands()
        if plan is None:
            return None
        return self.advance(plan, state)

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        until_done: str | None = None,
        on_tick: Callable[[RolloutPlan | None], None] | None = None,
    ) -> RolloutPlan | None:
        """Tick every ``rollout.tick_seconds`` until ``stop`` is set.

        ``until_done`` (a rollout id) returns once that rollout reaches a final phase.
        Errors are logged and retried on the next tick: the loop never dies of a blip.
        """
        stop = stop or threading.Event()
        plan: RolloutPlan | None = None
        try:
            while not stop.is_set():
                plan = self._tick_or_keep(plan)
                beat(self.settings.home_dir, "rollout")  # the liveness probe's heartbeat
                if on_tick is not None:
                    on_tick(plan)
                if _finished(plan, until_done):
                    return plan
                stop.wait(self.settings.rollout.tick_seconds)
        finally:
            self._release_lease()
        return plan

    def _tick_or_keep(self, plan: RolloutPlan | None) -> RolloutPlan | None:
        """``tick()``, or ``plan`` unchanged when the tick failed (logged, retried next)."""
        try:
            return self.tick()
        except PetalopsError as exc:
            log.warning("rollout controller: %s", exc.message)
        except Exception:
            log.exception("rollout controller tick failed")
        return plan

    def _release_lease(self) -> None:
        try:
            self.lease.release()
        except Exception:  # the lease expires on its own
            log.debug("could not release the rollout lease", exc_info=True)

    # -- commands ---------------------------------------------------------------------------

    def _apply_pending_commands(self) -> tuple[RolloutPlan | None, RegistryState]:
        """Apply the queued commands; the plan and registry state after them."""
        state = self.plane.read()
        plan = RolloutPlan.parse(state.plan_raw)
        for command in self.store.pending(self.name):
            if not self.store.claim(command["id"], self.holder):
                continue
            plan = self._answer(command, plan)
            state = self.plane.read()
        return plan, state

    def _answer(self, command: dict[str, Any], plan: RolloutPlan | None) -> RolloutPlan | None:
        """Apply one claimed command and write its answer; the plan after it."""
        try:
            plan = self.apply_command(plan, command["command"], command["reason"] or "")
        except PetalopsError as exc:
            self.store.finish(command["id"], f"error: {exc.message}")
            return plan
        # The plan goes back with the answer: the caller need not read the registry.
        answer = {"result": f"{command['command']} applied by {self.holder}"}
        self.store.finish(command["id"], json.dumps({**answer, "plan": plan.to_dict()}))
        return plan

    def apply_command(self, plan: RolloutPlan | None, command: str, reason: str) -> RolloutPlan:
        """Apply ``promote``, ``abort``, ``pause`` or ``resume`` to the active rollout
        (holding the lease)."""
        if plan is None or not plan.active:
            raise ConflictError("no rollout is running; start one with `petalops rollout start`")
        actor = self.holder
        if command == "promote":
            if plan.phase == "rolling_back":
                raise ConflictError(f"rollout {plan.rollout_id} is rolling back")
            return self.promote(plan, reason or "manual promote", actor=actor)
        if command == "abort":
            if plan.phase == "promoting":
                raise ConflictError(f"rollout {plan.rollout_id} is already being promoted")
            return self.roll_back(plan, reason or "manual abort", action="abort", actor=actor)
        if command == "pause":
            return self.pause(plan, reason or "manual pause", actor=actor)
        if command == "resume":
            return self.resume(plan, reason or "manual resume", actor=actor)
        raise ConfigError(
            f"unknown rollout command {command!r}; use promote, abort, pause or resume"
        )

    def pause(self, plan: RolloutPlan, reason: str, *, actor: str = "") -> RolloutPlan:
        """Hold ``plan`` where it is: same step and weights, nothing judged, until resumed."""
        if plan.paused:
            raise ConflictError(f"rollout {plan.rollout_id} is already paused")
        if plan.phase in ("promoting", "rolling_back"):
            raise ConflictError(f"rollout {plan.rollout_id} is {plan.phase}; it cannot pause")
        held = plan.evolve(paused_at=self.clock())
        self._save(held)
        self._record(held, "pause", reason, actor=actor)
        return held

    def resume(self, plan: RolloutPlan, reason: str, *, actor: str = "") -> RolloutPlan:
        """Continue a paused ``plan`` at the step and weights it held.

        The step's window starts again at the resume: what was logged while paused is not
        judged (the pause was asked for because that traffic should not count).
        """
        if not plan.paused:
            raise ConflictError(f"rollout {plan.rollout_id} is not paused")
        now = self.clock()
        resumed = plan.evolve(paused_at=0.0, step_started=now, judged_at=now)
        self._save(resumed)
        self._record(
            resumed, "resume", reason, actor=actor, detail={"paused_s": now - plan.paused_at}
        )
        return resumed

    # -- the state machine ------------------------------------------------------------------

    def advance(self, plan: RolloutPlan, state: RegistryState) -> RolloutPlan:
        """Move ``plan`` forward as far as the data allows; every write goes to the registry."""
        now = self.clock()
        if plan.phase == "promoting":
            return self._finish_promote(plan, "resumed")
        if plan.phase == "rolling_back":
            return self._finish_rollback(plan, "rolled_back", "resumed")
        if not plan.active:
            return self._settle_ended(plan, state)
        moved = _aliases_moved(plan, state)
        if moved:
            return self.roll_back(
                plan, "aliases moved outside the rollout: " + moved, action="abort"
            )
        if state.champion is None or state.challenger is None:
            log.warning("rollout %s: aliases not readable; holding", plan.rollout_id)
            return plan
        self._repair_traffic(plan, state)
        if plan.paused:
            return plan
        if plan.phase == "warming":
            if now - plan.step_started < plan.warm_s:
                return plan
            return strategy_of(plan).after_warm(self, plan, now)
        return self._judge(plan, now)

    def _settle_ended(self, plan: RolloutPlan, state: RegistryState) -> RolloutPlan:
        """An ended rollout whose traffic tag still routes to it: route to the champion."""
        if state.traffic.rollout_id == plan.rollout_id and state.traffic.strategy != "none":
            self._write_traffic(_out_of_traffic(plan))
        return plan

    def _repair_traffic(self, plan: RolloutPlan, state: RegistryState) -> None:
        """Rewrite the traffic tag when it differs from what the plan asks for."""
        desired = traffic_for(plan)
        if not same_traffic(desired, state.traffic):
            self._write_traffic(desired)

    def _judge(self, plan: RolloutPlan, now: float) -> RolloutPlan:
        """Judge the step's window: fail at once, or act on the verdict once the step is due."""
        verdict = judge_window(self.store, self.name, plan, calibration_of=self.calibration_of)
        if verdict.decision == "fail":
            return self.roll_back(plan, "; ".join(verdict.reasons), verdict=verdict)
        if not _step_due(plan, now):
            return plan
        step = decide(
            verdict, plan.step, plan.n_steps, plan.inconclusive, plan.thresholds.max_inconclusive
        )
        if step.action == "rollback":
            return self.roll_back(plan, step.reason, verdict=verdict)
        if step.action == "hold":
            held = plan.evolve(judged_at=now, inconclusive=step.inconclusive)
            self._save(held)
            self._record(held, "hold", step.reason, verdict=verdict)
            return held
        return strategy_of(plan).on_step_passed(self, plan, step, verdict, now)

    # -- the moves a strategy asks for (``strategies.base.Moves``) ---------------------------

    def step_to(
        self,
        plan: RolloutPlan,
        action: str,
        reason: str,
        *,
        verdict: Verdict | None = None,
        detail: dict[str, Any] | None = None,
    ) -> RolloutPlan:
        """Save ``plan``, route traffic as it asks, record ``action``; returns ``plan``."""
        self._save(plan)
        self._write_traffic(traffic_for(plan))
        self._record(plan, action, reason, verdict=verdict, detail=detail)
        return plan

    def stand_down(
        self, plan: RolloutPlan, action: str, reason: str, *, verdict: Verdict | None = None
    ) -> RolloutPlan:
        """Save a finished ``plan`` and take the challenger out of traffic (its alias stays)."""
        self._save(plan)
        self._write_traffic(_out_of_traffic(plan))
        self._record(plan, action, reason, verdict=verdict)
        return plan

    def smoke_test(self, plan: RolloutPlan) -> SmokeResult:
        """The blue-green smoke test of the plan's version against its baseline."""
        return self.smoke(self.settings, plan.version, plan.baseline, plan.thresholds)

    def promote(
        self, plan: RolloutPlan, reason: str, *, verdict: Verdict | None = None, actor: str = ""
    ) -> RolloutPlan:
        """Make the challenger the champion; written ``promoting`` first, so it resumes."""
        promoting = plan.evolve(phase="promoting", reason=reason)
        self._save(promoting)
        return self._finish_promote(promoting, reason, verdict=verdict, actor=actor)

    def _finish_promote(
        self, plan: RolloutPlan, reason: str, *, verdict: Verdict | None = None, actor: str = ""
    ) -> RolloutPlan:
        # Order matters: at every moment between these writes the new version answers.
        if plan.baseline and plan.baseline != plan.version:
            self.plane.set_alias("previous", plan.baseline)
        self.plane.set_alias("champion", plan.version)
        self._write_traffic(_out_of_traffic(plan))
        self.plane.delete_alias("challenger")
        done = plan.evolve(phase="promoted", ended=self.clock())
        self._save(done)
        self._record(done, "promote", reason, verdict=verdict, actor=actor)
        return done

    def roll_back(
        self,
        plan: RolloutPlan,
        reason: str,
        *,
        verdict: Verdict | None = None,
        action: str = "rollback",
        actor: str = "",
        detail: dict[str, Any] | None = None,
    ) -> RolloutPlan:
        """All traffic back to the champion; written ``rolling_back`` first, so it resumes."""
        started = time.perf_counter()
        leaving = plan.evolve(phase="rolling_back", reason=reason)
        self._save(leaving)
        final = "aborted" if action == "abort" else "rolled_back"
        return self._finish_rollback(
            leaving,
            final,
            reason,
            verdict=verdict,
            action=action,
            actor=actor,
            detail=detail,
            started=started,
        )

    def _finish_rollback(
        self,
        plan: RolloutPlan,
        final: str,
        reason: str,
        *,
        verdict: Verdict | None = None,
        action: str = "rollback",
        actor: str = "",
        detail: dict[str, Any] | None = None,
        started: float | None = None,
    ) -> RolloutPlan:
        # Out of traffic first; the challenger alias goes last.
        self._write_traffic(_out_of_traffic(plan))
        out_ms = (time.perf_counter() - started) * 1000 if started is not None else None
        # Only the version this plan rolled out: a challenger set since is not ours to drop.
        if self.plane.read().challenger in (None, plan.version):
            self.plane.delete_alias("challenger")
        done = plan.evolve(phase=final, ended=self.clock())
        self._save(done)
        extra = dict(detail or {})
        if out_ms is not None:
            extra["registry_write_ms"] = round(out_ms, 1)
        self._record(done, action, reason, verdict=verdict, actor=actor, detail=extra)
        return done

    # -- writes -----------------------------------------------------------------------------

    def _save(self, plan: RolloutPlan) -> None:
        self.plane.set_plan(plan.serialize())

    def _write_traffic(self, policy: TrafficPolicy) -> None:
        self.plane.set_traffic(stamp(policy))
        metrics.set_weight(policy.challenger_buckets / 100, shadow=policy.shadow)

    def _record(
        self,
        plan: RolloutPlan,
        action: str,
        reason: str,
        *,
        verdict: Verdict | None = None,
        actor: str = "",
        detail: dict[str, Any] | None = None,
    ) -> None:
        history.record(
            self.store,
            self.name,
            plan,
            action,
            reason,
            actor=actor or self.holder,
            verdict=verdict,
            detail=detail,
        )
        history.announce(plan, action, reason, verdict)


def _finished(plan: RolloutPlan | None, rollout_id: str | None) -> bool:
    """Whether ``plan`` is the rollout ``rollout_id`` and has ended."""
    return (
        bool(rollout_id) and plan is not None and plan.rollout_id == rollout_id and not plan.active
    )


def _aliases_moved(plan: RolloutPlan, state: RegistryState) -> str:
    """The aliases someone moved away from the plan's versions ("" when none did)."""
    return ", ".join(
        f"{alias}={have} (plan: {want})"
        for alias, have, want in (
            ("champion", state.champion, plan.baseline),
            ("challenger", state.challenger, plan.version),
        )
        if have is not None and have != want
    )


def _step_due(plan: RolloutPlan, now: float) -> bool:
    """Whether the step has lasted its length and the last verdict is an interval old."""
    return now - plan.step_started >= plan.step_length and now - plan.judged_at >= min(
        plan.interval_s, plan.step_length
    )


def _out_of_traffic(plan: RolloutPlan) -> TrafficPolicy:
    """Strategy ``none``, stamped with the rollout that ended (workers drop the challenger)."""
    return replace(TrafficPolicy.none(), rollout_id=plan.rollout_id)


class ControllerThread:
    """The controller loop in a daemon thread (embedded in `petalops serve`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="petalops-rollout", daemon=True)

    def _run(self) -> None:
        try:
            Controller(self.settings).run(self._stop)
        except Exception:  # a broken monitoring DB must not take the server down
            log.exception("embedded rollout controller stopped")

    def start(self) -> ControllerThread:
        """Start the thread; returns ``self``."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to stop (it releases the lease) and wait up to ``timeout`` seconds."""
        self._stop.set()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def start_in_background(settings: Settings) -> ControllerThread:
    """Start the controller loop in a daemon thread; call ``.stop()`` on shutdown.

    Safe to call from every server worker: the lease lets exactly one of them act.
    """
    return ControllerThread(settings).start()
