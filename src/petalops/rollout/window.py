"""The current step's window of the prediction log, summarized per variant and judged.

Used by the controller on every tick and by `petalops rollout status`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from petalops.rollout.analysis import VariantStats, Verdict, analyze, summarize
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.reads import RolloutReads
from petalops.rollout.strategies.registry import of as strategy_of

CalibrationOf = Callable[[str], "dict[str, Any] | None"]


def registry_calibrations(settings: Any) -> CalibrationOf:
    """Each version's calibration from its profile in the registry (``None`` when it has
    none or cannot be read: its estimate then uses the raw probabilities). Nothing is read
    or imported (numpy, with the monitoring overview) before a version is asked for."""
    profile_of: Callable[[str], dict[str, Any]] | None = None

    def calibration_of(version: str) -> dict[str, Any] | None:
        nonlocal profile_of
        try:
            if profile_of is None:
                from petalops.monitoring.overview import registry_profiles

                profile_of = registry_profiles(settings)
            calibration: dict[str, Any] | None = profile_of(version).get("calibration")
        except Exception:  # a missing profile must not stop the analysis
            return None
        return calibration

    return calibration_of


def judge_window(
    store: RolloutReads,
    model_name: str,
    plan: RolloutPlan,
    until: float | None = None,
    calibration_of: CalibrationOf | None = None,
) -> Verdict:
    """Analyze the rows logged since the plan's step started (up to ``until``);
    ``calibration_of`` gives each version's calibration for the estimated accuracy."""
    strategy = strategy_of(plan)
    since = plan.step_started

    def summarized(variant: str, version: str) -> VariantStats:
        samples = store.samples(model_name, variant, version, since, until)
        # A version's calibration (its profile, from the registry) only for rows it can
        # estimate from: an empty window (`rollout status` before traffic) reads nothing.
        scored = calibration_of is not None and any(s.probabilities for s in samples)
        return summarize(samples, calibration_of(version) if scored and calibration_of else None)

    challenger = summarized(strategy.challenger_variant, plan.version)
    champion = summarized("champion", plan.baseline) if strategy.reads_champion else None
    # When the challenger takes all traffic the champion answers nothing: the challenger
    # is then held to the absolute limits alone.
    alone = not strategy.reads_champion or plan.weight >= 100
    return analyze(challenger, champion, plan.thresholds, require_champion=not alone)
