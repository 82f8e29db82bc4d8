"""The current step's window of the prediction log, summarized per variant and judged.

Used by the controller on every tick and by `petalops rollout status`.
"""

from __future__ import annotations

from petalops.rollout.analysis import Verdict, analyze, summarize
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.store import RolloutStore
from petalops.rollout.strategies.registry import of as strategy_of


def judge_window(
    store: RolloutStore, model_name: str, plan: RolloutPlan, until: float | None = None
) -> Verdict:
    """Analyze the rows logged since the plan's step started (up to ``until``)."""
    strategy = strategy_of(plan)
    since = plan.step_started
    challenger = summarize(
        store.samples(model_name, strategy.challenger_variant, plan.version, since, until)
    )
    champion = (
        summarize(store.samples(model_name, "champion", plan.baseline, since, until))
        if strategy.reads_champion
        else None
    )
    # When the challenger takes all traffic the champion answers nothing: the challenger
    # is then held to the absolute limits alone.
    alone = not strategy.reads_champion or plan.weight >= 100
    return analyze(challenger, champion, plan.thresholds, require_champion=not alone)
