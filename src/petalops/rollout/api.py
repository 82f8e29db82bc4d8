"""The rollout as the CLI (and the monitoring loop) uses it; each command is a thin wrapper.

* ``start_rollout(settings, version, strategy=...)`` writes a new plan and returns its id;
  a controller (`petalops rollout run`, or one embedded in `petalops serve`) carries it out.
* ``request(settings, "promote" | "abort" | "pause" | "resume")`` hands a command to the
  running controller, or applies it here when none is running.
* ``rollout_status`` and ``rollout_history``: what `petalops rollout status | history` show.
* ``parse_steps`` and ``thresholds_from``: the plan's inputs from flags and settings.
* ``version_rollouts``: the rollouts one version went through (`petalops registry show`).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from petalops.config import Settings
from petalops.errors import ConfigError, ConflictError, NotFoundError
from petalops.rollout import history
from petalops.rollout.analysis import Thresholds
from petalops.rollout.control_plane import ControlPlane, RegistryState
from petalops.rollout.lease import holder_id, lease_name
from petalops.rollout.plan import RolloutPlan, new_rollout_id, stamp, traffic_for
from petalops.rollout.reads import RolloutReader, RolloutReads
from petalops.rollout.strategies import registry as strategies
from petalops.rollout.window import judge_window, registry_calibrations
from petalops.security import audit

if TYPE_CHECKING:
    from petalops.rollout.store import RolloutStore

log = logging.getLogger("petalops.rollout")


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


# -- start ------------------------------------------------------------------------------------


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
    ``strategy`` is one of ``strategies.registry.names()`` (default ``rollout.strategy``):
    canary, bluegreen, shadow or shadow-canary (a shadow that continues as a canary when it
    passes), or any strategy registered since.
    """
    # Here, not at the top: SQLAlchemy (writes), which the read-only commands never need.
    from petalops.rollout.store import RolloutStore

    chosen = strategies.get(strategy or settings.rollout.strategy)
    plane = plane or ControlPlane(settings)
    store = store or RolloutStore(settings.monitor_url)
    version = str(version).strip()
    state = plane.read()
    champion = _champion_to_roll_out_against(settings, plane, state, version)
    now = clock()
    plan = RolloutPlan(
        rollout_id=new_rollout_id(now),
        strategy=chosen.stored_as,
        version=version,
        baseline=champion,
        steps=parse_steps(steps if steps is not None else settings.rollout.steps),
        interval_s=_or(interval_s, settings.rollout.interval_seconds),
        thresholds=thresholds or thresholds_from(settings),
        phase=chosen.initial_phase,
        started=now,
        step_started=now,
        judged_at=now,
        duration_s=_or(duration_s, settings.rollout.shadow_seconds),
        keep_warm_s=_or(keep_warm_s, settings.rollout.keep_warm_seconds),
        warm_s=_or(warm_s, _default_warm_seconds(settings)),
        then=chosen.then,
    )
    _publish(plane, plan)
    history.record(
        store,
        settings.project,
        plan,
        "start",
        f"{chosen.name} of version {version} against champion {champion}",
        actor=holder_id("cli:"),
        detail={"plan": plan.to_dict()},
    )
    log.info("rollout %s started: %s of version %s", plan.rollout_id, chosen.name, version)
    return plan.rollout_id


def _champion_to_roll_out_against(
    settings: Settings, plane: ControlPlane, state: RegistryState, version: str
) -> str:
    """The champion ``version`` would replace; refuses while another rollout is running."""
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
    return champion


def _or(value: float | None, default: float) -> float:
    return value if value is not None else default


def _default_warm_seconds(settings: Settings) -> float:
    """``rollout.warm_seconds``, or two reconciles of every worker and a second to spare."""
    warm = settings.rollout.warm_seconds
    return warm if warm is not None else 2 * settings.reconcile_seconds + 1


def _publish(plane: ControlPlane, plan: RolloutPlan) -> None:
    """Challenger alias, then the plan, then the traffic it asks for."""
    plane.set_alias("challenger", plan.version)
    plane.set_plan(plan.serialize())
    plane.set_traffic(stamp(traffic_for(plan)))


# -- promote / abort / pause / resume ---------------------------------------------------------

# What `request` hands to the controller (`Controller.apply_command`).
COMMANDS = ("promote", "abort", "pause", "resume")


def request(
    settings: Settings, command: str, reason: str = "", *, timeout: float | None = None
) -> dict[str, Any]:
    """Promote, abort, pause or resume the running rollout now.

    A running controller holds the lease: the command is queued for it and applied within
    one tick. With no live controller, this process takes the lease and applies it itself.
    The command goes into the audit trail with the plan before and after.
    """
    if command not in COMMANDS:
        raise ConfigError(f"unknown rollout command {command!r}; use one of {', '.join(COMMANDS)}")
    before = RolloutPlan.parse(ControlPlane(settings).read().plan_raw)
    out = _request(settings, command, reason, timeout)
    after = out.get("plan")
    audit.record(
        settings,
        f"rollout.{command}",
        f"{settings.project} rollout {before.rollout_id if before else '-'}",
        before=_audited(before.to_dict() if before else None),
        after=_audited(after if isinstance(after, dict) else None),
        detail=reason,
    )
    return out


_AUDITED_PLAN = ("rollout_id", "strategy", "version", "baseline", "phase", "step", "paused_at")


def _audited(plan: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if plan is None else {k: plan.get(k) for k in _AUDITED_PLAN}


def _request(
    settings: Settings, command: str, reason: str, timeout: float | None
) -> dict[str, Any]:
    from petalops.rollout.store import RolloutStore  # SQLAlchemy: see start_rollout

    store = RolloutStore(settings.monitor_url)
    name = lease_name(settings)
    holder = holder_id("cli:")
    r = settings.rollout
    wait = timeout if timeout is not None else r.lease_seconds + 2 * r.tick_seconds + 1
    if not store.acquire(name, holder, r.lease_seconds):
        command_id = store.submit(settings.project, command, reason)
        answer = _await_answer(store, command_id, wait)
        if answer is not None:
            return answer
        _take_over(store, command_id, command, settings, holder, wait)
    return _apply_here(settings, store, holder, command, reason)


def _await_answer(store: RolloutStore, command_id: int, wait: float) -> dict[str, Any] | None:
    """The running controller's answer to a queued command, or None if none came in time."""
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
    return None


def _take_over(
    store: RolloutStore,
    command_id: int,
    command: str,
    settings: Settings,
    holder: str,
    wait: float,
) -> None:
    """Nobody answered: the controller is gone. Take the command, then its expired lease."""
    if not store.claim(command_id, holder):
        raise ConflictError(
            f"the rollout controller took the {command} but has not finished it; "
            "see `petalops rollout status`"
        )
    store.finish(command_id, f"timed out; applied by {holder}")
    if not store.acquire(lease_name(settings), holder, settings.rollout.lease_seconds):
        raise ConflictError(
            f"a rollout controller holds the lease but did not answer in {wait:.0f}s; retry"
        )


def _apply_here(
    settings: Settings, store: RolloutStore, holder: str, command: str, reason: str
) -> dict[str, Any]:
    """Apply the command in this process, which holds the lease; released after."""
    # Imported here: the controller brings the smoke test (numpy), which `rollout start`,
    # `status` and `history` never run.
    from petalops.rollout.controller import Controller

    controller = Controller(settings, holder=holder, store=store)
    try:
        state = controller.plane.read()
        plan = controller.apply_command(RolloutPlan.parse(state.plan_raw), command, reason)
    finally:
        controller.lease.release()
    return {"result": f"{command} applied by {holder}", "plan": plan.to_dict()}


# -- status and history -----------------------------------------------------------------------


def rollout_status(
    settings: Settings, *, state: RegistryState | None = None, store: RolloutReads | None = None
) -> dict[str, Any]:
    """Everything `petalops rollout status` shows, as plain data.

    A caller that polls (the control room) passes the registry ``state`` it has read and
    its open ``store``, so each call costs neither a second registry read nor a connection.
    Without one, the monitoring database is only read (a SQLite file that is not there reads
    as empty and is not created).
    """
    if store is None:
        reader = RolloutReader(settings.monitor_url)
        try:
            return rollout_status(settings, state=state, store=reader)
        finally:
            reader.close()
    state = state or ControlPlane(settings).read()
    plan = RolloutPlan.parse(state.plan_raw)
    now = time.time()
    out: dict[str, Any] = {
        "model": settings.project,
        "aliases": state.aliases,
        "traffic": state.traffic.to_dict(),
        "controller": _controller_of(store, settings, now),
        "plan": plan.to_dict() if plan else None,
        "window": None,
        "next_step_in_s": None,
        "recent": store.history(settings.project, rollout_id=plan.rollout_id, limit=5)
        if plan
        else [],
    }
    out["outcome"] = None
    if plan is not None:
        out["window"] = _window_of(store, settings, plan, now)
        out["next_step_in_s"] = _next_step_in(plan, now)
        out["outcome"] = _outcome_of(plan)
    return out


_ENDINGS = {
    "promoted": "promoted: version {version} is the champion (was {baseline})",
    "passed": "passed: version {version} passed its shadow run against {baseline}",
    "rolled_back": "rolled back: version {version} failed; champion {baseline} kept",
    "aborted": "aborted: version {version} stopped by hand; champion {baseline} kept",
}


def _outcome_of(plan: RolloutPlan) -> dict[str, Any] | None:
    """How an ended rollout ended, in one line (None while it runs): the last window's
    verdict alone would read "inconclusive" after a promotion that emptied it."""
    if plan.active:
        return None
    text = _ENDINGS.get(plan.phase, plan.phase + ": version {version} against {baseline}")
    return {
        "phase": plan.phase,
        "ended": plan.ended or None,
        "reason": plan.reason,
        "summary": text.format(version=plan.version, baseline=plan.baseline),
    }


def _controller_of(store: RolloutReads, settings: Settings, now: float) -> dict[str, Any] | None:
    """The live lease holder and how long its lease has left, or None."""
    lease = store.lease(lease_name(settings))
    if not lease or lease["expires"] <= now:
        return None
    return {"holder": lease["holder"], "expires_in_s": round(lease["expires"] - now, 1)}


def _window_of(
    store: RolloutReads, settings: Settings, plan: RolloutPlan, now: float
) -> dict[str, Any]:
    """The step's window so far (up to the end of an ended rollout) and its verdict."""
    until = plan.ended if not plan.active and plan.ended else None
    calibration = registry_calibrations(settings)
    verdict = judge_window(store, settings.project, plan, until=until, calibration_of=calibration)
    return {
        "since": plan.step_started,
        "seconds": round((until or now) - plan.step_started, 1),
        **verdict.to_dict(),
    }


def _next_step_in(plan: RolloutPlan, now: float) -> float | None:
    """Seconds to the next decision of an active plan (end of the warm-up, or of the step)."""
    if plan.paused:
        return None  # nothing is decided until it is resumed
    if plan.active and plan.phase != "warming":
        due = max(plan.step_started + plan.step_length, plan.judged_at + plan.interval_s)
        return round(max(0.0, due - now), 1)
    if plan.phase == "warming":
        return round(max(0.0, plan.step_started + plan.warm_s - now), 1)
    return None


def rollout_history(
    settings: Settings, rollout_id: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Recorded decisions, oldest first (read only: nothing is created)."""
    store = RolloutReader(settings.monitor_url)
    try:
        return store.history(settings.project, rollout_id=rollout_id, limit=limit)
    finally:
        store.close()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_rollouts(settings: Settings, name: str, version: str) -> dict[str, str]:
    """``{rollout_id: summary}`` of every rollout where ``version`` was champion or challenger."""
    try:
        store = RolloutReader(settings.monitor_url)  # read only: a missing file reads as empty
        try:
            events = store.history(name, limit=10_000)
        finally:
            store.close()
    except Exception as exc:  # the monitoring store is optional for lineage
        return {"(unavailable)": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if version in (str(event.get("challenger_version")), str(event.get("champion_version"))):
            by_id.setdefault(str(event["rollout_id"]), []).append(event)
    out = {}
    for rollout_id, rows in by_id.items():
        first, last = rows[0], rows[-1]
        role = "challenger" if str(first.get("challenger_version")) == version else "champion"
        verdict = f", verdict {last['verdict']}" if last.get("verdict") else ""
        out[rollout_id] = (
            f"{first['strategy']} as {role}, {_when(first['ts'])} → {_when(last['ts'])}, "
            f"last: {last['phase']}/{last['action']}{verdict}"
        )
    return out
