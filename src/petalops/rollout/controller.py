"""The rollout controller: reads the plan from the registry, judges, writes the next state.

Library entry points (the CLI and `petalops serve` are thin wrappers around them):

* ``start_rollout(settings, version, strategy=...)`` writes a new plan and returns its id.
* ``Controller(settings).run(stop)`` is the loop (`petalops rollout run`); every tick it
  renews its lease, applies pending promote/abort commands, repairs the traffic tag from
  the plan and judges the current step.
* ``start_in_background(settings)`` runs that loop in a daemon thread, for embedding in
  `petalops serve`; with several workers each starts one and the lease lets one act.
* ``request(settings, "promote" | "abort")``, ``rollout_status`` and ``rollout_history``.

Everything the controller knows is in the registry (plan tag ``petalops.rollout``, traffic
tag ``petalops.traffic``, aliases) and in the monitoring database (history, lease), so a
controller that dies is replaced by starting another: it resumes from the plan.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from petalops.config import Settings
from petalops.errors import ConfigError, ConflictError, NotFoundError, PetalopsError
from petalops.rollout import metrics
from petalops.rollout.analysis import Thresholds, Verdict, analyze, decide, summarize
from petalops.rollout.control_plane import ControlPlane, RegistryState
from petalops.rollout.plan import (
    STRATEGY_CHOICES,
    RolloutPlan,
    new_rollout_id,
    same_traffic,
    stamp,
    traffic_for,
)
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.smoke import SmokeResult, smoke_test
from petalops.rollout.store import RolloutStore

log = logging.getLogger("petalops.rollout")

SmokeTest = Callable[[Settings, str, str, Thresholds], SmokeResult]


def _holder_id(prefix: str = "") -> str:
    return f"{prefix}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def lease_name(settings: Settings) -> str:
    return f"rollout:{settings.project}"


def thresholds_from(settings: Settings, **overrides: Any) -> Thresholds:
    """The rollout thresholds from settings, with ``None`` overrides ignored."""
    r = settings.rollout
    base = Thresholds(
        max_error_rate=r.max_error_rate,
        max_p99_ms=r.max_p99_ms,
        max_disagreement=r.max_disagreement,
        min_accuracy=r.min_accuracy,
        max_accuracy_drop=r.max_accuracy_drop,
        min_samples=r.min_samples,
        min_labels=r.min_labels,
        max_inconclusive=r.max_inconclusive,
    )
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


class LeaseLostError(PetalopsError):
    """Another controller took the lease while this one was busy: it must not write."""

    exit_code = 1
    http_status = 409


class FencedPlane(ControlPlane):
    """A control plane whose every registry write is preceded by renewing the lease.

    MLflow has no conditional writes, so the registry cannot check a fencing token. Renewing
    (an atomic compare-and-set on the holder, see ``RolloutStore.acquire``) right before each
    write shrinks the window in which a controller that lost its lease (paused past expiry
    while a standby took over) could still write, from a whole tick (a smoke test or a warm
    window can take seconds) to one registry call.
    """

    def __init__(self, inner: ControlPlane, renew: Callable[[], bool], holder: str) -> None:
        super().__init__(inner.settings, inner.name)
        self.inner = inner
        self.renew = renew
        self.holder = holder

    def _fence(self, what: str) -> None:
        if not self.renew():
            raise LeaseLostError(
                f"rollout controller {self.holder} lost its lease before writing {what}; "
                "the controller now holding it carries on"
            )

    def read(self) -> RegistryState:
        return self.inner.read()

    def version_exists(self, version: str) -> bool:
        return self.inner.version_exists(version)

    def set_alias(self, alias: str, version: str) -> None:
        self._fence(f"alias {alias}")
        self.inner.set_alias(alias, version)

    def delete_alias(self, alias: str) -> None:
        self._fence(f"alias {alias}")
        self.inner.delete_alias(alias)

    def set_traffic(self, policy: TrafficPolicy) -> None:
        self._fence("the traffic policy")
        self.inner.set_traffic(policy)

    def set_plan(self, text: str) -> None:
        self._fence("the rollout plan")
        self.inner.set_plan(text)


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
        self.holder = holder or _holder_id()
        self.lease = lease_name(settings)
        self.plane = FencedPlane(plane or ControlPlane(settings), self._renew, self.holder)
        self.clock = clock
        self.smoke = smoke
        self.last_verdict: Verdict | None = None

    def _renew(self) -> bool:
        return self.store.acquire(self.lease, self.holder, self.settings.rollout.lease_seconds)

    # -- the loop ---------------------------------------------------------------------------

    def tick(self) -> RolloutPlan | None:
        """One pass: lease, commands, repair, judge. Returns the plan after it (None: standby)."""
        if not self.store.acquire(self.lease, self.holder, self.settings.rollout.lease_seconds):
            return None
        state = self.plane.read()
        plan = RolloutPlan.parse(state.plan_raw)
        for command in self.store.pending(self.name):
            if not self.store.claim(command["id"], self.holder):
                continue
            try:
                plan = self.apply_command(plan, command["command"], command["reason"] or "")
            except PetalopsError as exc:
                self.store.finish(command["id"], f"error: {exc.message}")
            else:
                # The plan goes back with the answer: the caller need not read the registry.
                answer = {"result": f"{command['command']} applied by {self.holder}"}
                self.store.finish(command["id"], json.dumps({**answer, "plan": plan.to_dict()}))
            state = self.plane.read()
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
                try:
                    plan = self.tick()
                except PetalopsError as exc:
                    log.warning("rollout controller: %s", exc.message)
                except Exception:
                    log.exception("rollout controller tick failed")
                if on_tick is not None:
                    on_tick(plan)
                if (
                    until_done
                    and plan is not None
                    and plan.rollout_id == until_done
                    and not plan.active
                ):
                    return plan
                stop.wait(self.settings.rollout.tick_seconds)
        finally:
            try:
                self.store.release(self.lease, self.holder)
            except Exception:  # the lease expires on its own
                log.debug("could not release the rollout lease", exc_info=True)
        return plan

    # -- state transitions ------------------------------------------------------------------

    def advance(self, plan: RolloutPlan, state: RegistryState) -> RolloutPlan:
        """Move ``plan`` forward as far as the data allows; every write goes to the registry."""
        now = self.clock()
        if plan.phase == "promoting":
            return self._finish_promote(plan, "resumed")
        if plan.phase == "rolling_back":
            return self._finish_rollback(plan, "rolled_back", "resumed")
        if not plan.active:
            if state.traffic.rollout_id == plan.rollout_id and state.traffic.strategy != "none":
                self._write_traffic(replace(TrafficPolicy.none(), rollout_id=plan.rollout_id))
            return plan
        moved = [
            f"{alias}={have} (plan: {want})"
            for alias, have, want in (
                ("champion", state.champion, plan.baseline),
                ("challenger", state.challenger, plan.version),
            )
            if have is not None and have != want
        ]
        if moved:
            return self._rollback(
                plan, "aliases moved outside the rollout: " + ", ".join(moved), action="abort"
            )
        if state.champion is None or state.challenger is None:
            log.warning("rollout %s: aliases not readable; holding", plan.rollout_id)
            return plan
        desired = traffic_for(plan)
        if not same_traffic(desired, state.traffic):
            self._write_traffic(desired)
        if plan.phase == "warming":
            if now - plan.step_started < plan.warm_s:
                return plan
            return self._after_warm(plan, now)
        return self._judge(plan, now)

    def _after_warm(self, plan: RolloutPlan, now: float) -> RolloutPlan:
        if plan.strategy == "bluegreen":
            result = self.smoke(self.settings, plan.version, plan.baseline, plan.thresholds)
            detail = {"smoke": {"passed": result.passed, **result.numbers}}
            if not result.passed:
                return self._rollback(
                    plan, "smoke test failed: " + "; ".join(result.reasons), detail=detail
                )
            flipped = plan.evolve(phase="flipped", step_started=now, judged_at=now)
            self._save(flipped)
            self._write_traffic(traffic_for(flipped))
            self._record(
                flipped, "flip", "smoke test passed; all traffic to the challenger", detail=detail
            )
            return flipped
        first = plan.evolve(phase="running", step=0, step_started=now, judged_at=now)
        self._save(first)
        self._write_traffic(traffic_for(first))
        self._record(first, "advance", f"warm; challenger at {first.weight:g}%")
        return first

    def window_stats(self, plan: RolloutPlan, until: float | None = None) -> Verdict:
        """Analyze the current step's window (also used by `rollout status`)."""
        since = plan.step_started
        challenger = summarize(
            self.store.samples(self.name, plan.challenger_variant, plan.version, since, until)
        )
        bluegreen = plan.strategy == "bluegreen"
        champion = (
            None
            if bluegreen
            else summarize(self.store.samples(self.name, "champion", plan.baseline, since, until))
        )
        # When the challenger takes all traffic the champion answers nothing: the challenger
        # is then held to the absolute limits alone.
        alone = bluegreen or plan.weight >= 100
        return analyze(challenger, champion, plan.thresholds, require_champion=not alone)

    def _judge(self, plan: RolloutPlan, now: float) -> RolloutPlan:
        verdict = self.window_stats(plan)
        self.last_verdict = verdict
        if verdict.decision == "fail":
            return self._rollback(plan, "; ".join(verdict.reasons), verdict=verdict)
        due = now - plan.step_started >= plan.step_length and now - plan.judged_at >= min(
            plan.interval_s, plan.step_length
        )
        if not due:
            return plan
        step = decide(
            verdict, plan.step, plan.n_steps, plan.inconclusive, plan.thresholds.max_inconclusive
        )
        if step.action == "rollback":
            return self._rollback(plan, step.reason, verdict=verdict)
        if step.action == "hold":
            held = plan.evolve(judged_at=now, inconclusive=step.inconclusive)
            self._save(held)
            self._record(held, "hold", step.reason, verdict=verdict)
            return held
        if step.action == "advance":
            nxt = plan.evolve(step=step.next_step, step_started=now, judged_at=now, inconclusive=0)
            self._save(nxt)
            self._write_traffic(traffic_for(nxt))
            self._record(
                nxt, "advance", f"{step.reason}; challenger at {nxt.weight:g}%", verdict=verdict
            )
            return nxt
        # promote: the last step passed
        if plan.strategy == "shadow":
            if plan.then == "canary":
                canary = plan.evolve(
                    strategy="canary",
                    phase="running",
                    step=0,
                    step_started=now,
                    judged_at=now,
                    inconclusive=0,
                    then="",
                )
                self._save(canary)
                self._write_traffic(traffic_for(canary))
                self._record(
                    canary,
                    "advance",
                    f"shadow passed; canary at {canary.weight:g}%",
                    verdict=verdict,
                )
                return canary
            passed = plan.evolve(phase="passed", ended=now, reason="shadow passed")
            self._save(passed)
            self._write_traffic(replace(TrafficPolicy.none(), rollout_id=plan.rollout_id))
            self._record(
                passed,
                "passed",
                "shadow passed; the challenger stays registered, out of traffic",
                verdict=verdict,
            )
            return passed
        return self._promote(plan, step.reason, verdict=verdict)

    def _promote(
        self, plan: RolloutPlan, reason: str, *, verdict: Verdict | None = None, actor: str = ""
    ) -> RolloutPlan:
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
        self._write_traffic(replace(TrafficPolicy.none(), rollout_id=plan.rollout_id))
        self.plane.delete_alias("challenger")
        done = plan.evolve(phase="promoted", ended=self.clock())
        self._save(done)
        self._record(done, "promote", reason, verdict=verdict, actor=actor)
        return done

    def _rollback(
        self,
        plan: RolloutPlan,
        reason: str,
        *,
        verdict: Verdict | None = None,
        action: str = "rollback",
        actor: str = "",
        detail: dict[str, Any] | None = None,
    ) -> RolloutPlan:
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
        self._write_traffic(replace(TrafficPolicy.none(), rollout_id=plan.rollout_id))
        out_ms = (time.perf_counter() - started) * 1000 if started is not None else None
        self.plane.delete_alias("challenger")
        done = plan.evolve(phase=final, ended=self.clock())
        self._save(done)
        extra = dict(detail or {})
        if out_ms is not None:
            extra["registry_write_ms"] = round(out_ms, 1)
        self._record(done, action, reason, verdict=verdict, actor=actor, detail=extra)
        return done

    # -- commands ---------------------------------------------------------------------------

    def apply_command(self, plan: RolloutPlan | None, command: str, reason: str) -> RolloutPlan:
        """Apply ``promote`` or ``abort`` to the active rollout (holding the lease)."""
        if plan is None or not plan.active:
            raise ConflictError("no rollout is running; start one with `petalops rollout start`")
        actor = self.holder
        if command == "promote":
            if plan.phase == "rolling_back":
                raise ConflictError(f"rollout {plan.rollout_id} is rolling back")
            return self._promote(plan, reason or "manual promote", actor=actor)
        if command == "abort":
            if plan.phase == "promoting":
                raise ConflictError(f"rollout {plan.rollout_id} is already being promoted")
            return self._rollback(plan, reason or "manual abort", action="abort", actor=actor)
        raise ConfigError(f"unknown rollout command {command!r}; use promote or abort")

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
        data = dict(detail or {})
        if verdict is not None:
            data["verdict"] = verdict.to_dict()
        self.store.record(
            model_name=self.name,
            rollout_id=plan.rollout_id,
            strategy=plan.strategy,
            phase=plan.phase,
            step=plan.step,
            weight=100.0 if plan.phase == "promoted" else plan.weight,
            action=action,
            verdict=verdict.decision if verdict else None,
            reason=reason,
            champion_version=plan.baseline,
            challenger_version=plan.version,
            actor=actor or self.holder,
            detail=data,
        )
        metrics.count_decision(action)
        numbers = ""
        if verdict is not None:
            c = verdict.challenger
            numbers = (
                f" challenger n={c.requests} err={c.error_rate} p99={c.p99_ms}ms "
                f"disagree={c.disagreement_rate} acc={c.accuracy}"
            )
        log.info(
            "rollout %s %s: %s step %d weight %g%% — %s%s",
            plan.rollout_id,
            action,
            plan.strategy,
            plan.step + 1,
            plan.weight,
            reason,
            numbers,
        )


# -- library functions behind the CLI ---------------------------------------------------------


def parse_steps(text: str | list[float] | tuple[float, ...]) -> tuple[float, ...]:
    """``"5,25,50,100"`` -> (5, 25, 50, 100): increasing, in (0, 100], ending at 100."""
    try:
        raw = text.split(",") if isinstance(text, str) else list(text)
        steps = tuple(float(s) for s in raw if str(s).strip() != "")
    except ValueError:
        raise ConfigError(f"steps {text!r} are not numbers; example: --steps 5,25,50,100") from None
    if (
        not steps
        or any(b <= a for a, b in itertools.pairwise(steps))
        or steps[0] <= 0
        or steps[-1] != 100
    ):
        raise ConfigError(
            f"steps {text!r} must increase from above 0 and end at 100; example: 5,25,50,100"
        )
    return steps


def start_rollout(
    settings: Settings,
    version: str,
    strategy: str | None = None,
    *,
    steps: str | list[float] | tuple[float, ...] | None = None,
    interval_s: float | None = None,
    duration_s: float | None = None,
    keep_warm_s: float | None = None,
    warm_s: float | None = None,
    thresholds: Thresholds | None = None,
    plane: ControlPlane | None = None,
    store: RolloutStore | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """Register ``version`` as challenger and write a new rollout plan; returns its id.

    The controller (`petalops rollout run`, or embedded in `petalops serve`) carries it out.
    ``strategy`` is canary, bluegreen, shadow or shadow-canary (a shadow that continues as
    a canary when it passes).
    """
    r = settings.rollout
    chosen = strategy or r.strategy
    if chosen not in STRATEGY_CHOICES:
        raise ConfigError(
            f"strategy {chosen!r} is not one of {', '.join(STRATEGY_CHOICES)}; "
            "example: --strategy canary"
        )
    plane = plane or ControlPlane(settings)
    store = store or RolloutStore(settings.monitor_url)
    version = str(version).strip()
    state = plane.read()
    current = RolloutPlan.parse(state.plan_raw)
    if current is not None and current.active:
        raise ConflictError(
            f"rollout {current.rollout_id} ({current.strategy} of version {current.version}) "
            "is still running; `petalops rollout abort` or `promote` it first"
        )
    if not plane.version_exists(version):
        raise NotFoundError(
            f"model {settings.project!r} has no version {version}; see `petalops registry list`"
        )
    champion = state.champion
    if champion is None:
        raise ConflictError(
            f"model {settings.project!r} has no champion to roll out against; set one with "
            f"`petalops registry alias champion VERSION`"
        )
    if champion == version:
        raise ConflictError(f"version {version} is already the champion")
    now = clock()
    plan_strategy = "shadow" if chosen.startswith("shadow") else chosen
    plan = RolloutPlan(
        rollout_id=new_rollout_id(now),
        strategy=plan_strategy,  # type: ignore[arg-type]
        version=version,
        baseline=champion,
        steps=parse_steps(steps if steps is not None else r.steps),
        interval_s=interval_s if interval_s is not None else r.interval_seconds,
        thresholds=thresholds or thresholds_from(settings),
        phase="running" if plan_strategy == "shadow" else "warming",
        started=now,
        step_started=now,
        judged_at=now,
        duration_s=duration_s if duration_s is not None else r.shadow_seconds,
        keep_warm_s=keep_warm_s if keep_warm_s is not None else r.keep_warm_seconds,
        warm_s=warm_s
        if warm_s is not None
        else (r.warm_seconds if r.warm_seconds is not None else 2 * settings.reconcile_seconds + 1),
        then="canary" if chosen == "shadow-canary" else "",
    )
    plane.set_alias("challenger", version)
    plane.set_plan(plan.serialize())
    plane.set_traffic(stamp(traffic_for(plan)))
    store.record(
        model_name=settings.project,
        rollout_id=plan.rollout_id,
        strategy=plan.strategy,
        phase=plan.phase,
        step=0,
        weight=plan.weight,
        action="start",
        reason=f"{chosen} of version {version} against champion {champion}",
        champion_version=champion,
        challenger_version=version,
        actor=_holder_id("cli:"),
        detail={"plan": plan.to_dict()},
    )
    log.info("rollout %s started: %s of version %s", plan.rollout_id, chosen, version)
    return plan.rollout_id


def request(
    settings: Settings, command: str, reason: str = "", *, timeout: float | None = None
) -> dict[str, Any]:
    """Promote or abort the running rollout now.

    A running controller holds the lease: the command is queued for it and applied within
    one tick. With no live controller, this process takes the lease and applies it itself.
    """
    if command not in ("promote", "abort"):
        raise ConfigError(f"unknown rollout command {command!r}; use promote or abort")
    store = RolloutStore(settings.monitor_url)
    name = lease_name(settings)
    holder = _holder_id("cli:")
    r = settings.rollout
    wait = timeout if timeout is not None else r.lease_seconds + 2 * r.tick_seconds + 1
    if not store.acquire(name, holder, r.lease_seconds):
        command_id = store.submit(settings.project, command, reason)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            row = store.command(command_id)
            if row is not None and row["done_ts"] is not None:
                result = str(row["result"])
                if result.startswith("error: "):
                    raise ConflictError(result.removeprefix("error: "))
                answer: dict[str, Any] = json.loads(result)
                return answer
            time.sleep(0.1)
        # Nobody answered: the controller is gone. Take over once its lease has expired.
        if not store.claim(command_id, holder):
            raise ConflictError(
                f"the rollout controller took the {command} but has not finished it; "
                "see `petalops rollout status`"
            )
        store.finish(command_id, f"timed out; applied by {holder}")
        if not store.acquire(name, holder, r.lease_seconds):
            raise ConflictError(
                f"a rollout controller holds the lease but did not answer in {wait:.0f}s; retry"
            )
    controller = Controller(settings, holder=holder, store=store)
    try:
        state = controller.plane.read()
        plan = controller.apply_command(RolloutPlan.parse(state.plan_raw), command, reason)
    finally:
        store.release(name, holder)
    return {"result": f"{command} applied by {holder}", "plan": plan.to_dict()}


def rollout_status(settings: Settings) -> dict[str, Any]:
    """Everything `petalops rollout status` shows, as plain data."""
    plane = ControlPlane(settings)
    store = RolloutStore(settings.monitor_url)
    state = plane.read()
    plan = RolloutPlan.parse(state.plan_raw)
    now = time.time()
    lease = store.lease(lease_name(settings))
    out: dict[str, Any] = {
        "model": settings.project,
        "aliases": state.aliases,
        "traffic": state.traffic.to_dict(),
        "controller": (
            {"holder": lease["holder"], "expires_in_s": round(lease["expires"] - now, 1)}
            if lease and lease["expires"] > now
            else None
        ),
        "plan": plan.to_dict() if plan else None,
        "window": None,
        "next_step_in_s": None,
        "recent": store.history(settings.project, rollout_id=plan.rollout_id, limit=5)
        if plan
        else [],
    }
    if plan is not None:
        controller = Controller(settings, plane=plane, store=store, holder="status")
        until = plan.ended if not plan.active and plan.ended else None
        verdict = controller.window_stats(plan, until=until)
        out["window"] = {
            "since": plan.step_started,
            "seconds": round((until or now) - plan.step_started, 1),
            **verdict.to_dict(),
        }
        if plan.active and plan.phase != "warming":
            due = max(plan.step_started + plan.step_length, plan.judged_at + plan.interval_s)
            out["next_step_in_s"] = round(max(0.0, due - now), 1)
        elif plan.phase == "warming":
            out["next_step_in_s"] = round(max(0.0, plan.step_started + plan.warm_s - now), 1)
    return out


def rollout_history(
    settings: Settings, rollout_id: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Recorded decisions, oldest first."""
    return RolloutStore(settings.monitor_url).history(
        settings.project, rollout_id=rollout_id, limit=limit
    )


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
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
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
