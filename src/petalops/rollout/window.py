"""The current step's window of the prediction log, summarized per variant and judged.

Used by the controller on every tick and by `petalops rollout status`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from petalops.rollout.analysis import Verdict, analyze, summarize
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.store import RolloutStore
from petalops.rollout.strategies.registry import of as strategy_of

CalibrationOf = Callable[[str], "dict[str, Any] | None"]


def registry_calibrations(settings: Any) -> CalibrationOf:
    """Each version's calibration from its profile in the registry (``None`` when it has
    none or cannot be read: its estimate then uses the raw probabilities)."""
    from petalops.monitoring.overview import registry_profiles  # registry: not at import

    profile_of = registry_profiles(settings)

    def calibration_of(version: str) -> dict[str, Any] | None:
        try:
            calibration: dict[str, Any] | None = profile_of(version).get("calibration")
        except Exception:  # a missing profile must not stop the analysis
            return None
        return calibration

    return calibration_of


def judge_window(
    store: RolloutStore,
    model_name: str,
    plan: RolloutPlan,
    until: float | None = None,
    calibration_of: CalibrationOf | None = None,
) -> Verdict:
    """Analyze the rows logged since the plan's step started (up to ``until``);
    ``calibration_of`` gives each version's calibration for the estimated accuracy."""
    strategy = strategy_of(plan)
    since = plan.step_started

    def calibration(version: str) -> dict[str, Any] | None:
        return calibration_of(version) if calibration_of is not None else None

    challenger = summarize(
        store.samples(model_name, strategy.challenger_variant, plan.version, since, until),
        calibration(plan.version),
    )
    champion = (
        summarize(
            store.samples(model_name, "champion", plan.baseline, since, until),
            calibration(plan.baseline),
        )
        if strategy.reads_champion
        else None
    )
    # When the challenger takes all traffic the champion answers nothing: the challenger
    # is then held to the absolute limits alone.
    alone = not strategy.reads_champion or plan.weight >= 100
    return analyze(challenger, champion, plan.thresholds, require_champion=not alone)
