"""The rollout's Prometheus metrics (names fixed in docs/internals.md).

Created on first use, not at import. In multiprocess mode (several server workers with an
embedded controller) the weight gauge reports the most recent value any live process set.
"""

from __future__ import annotations

import functools
from typing import Any

WEIGHT_NAME = "petalops_rollout_weight"
DECISIONS_NAME = "petalops_rollout_decisions_total"


@functools.lru_cache(maxsize=1)
def _metrics() -> tuple[Any, Any]:
    from prometheus_client import Counter, Gauge

    weight = Gauge(
        WEIGHT_NAME,
        "Share of live traffic per variant during a rollout, in percent.",
        ["variant"],
        multiprocess_mode="livemostrecent",
    )
    decisions = Counter(
        DECISIONS_NAME,
        "Rollout decisions by verdict (advance, hold, promote, rollback, abort, flip, ...).",
        ["verdict"],
    )
    return weight, decisions


def set_weight(challenger: float, *, shadow: bool = False) -> None:
    weight, _ = _metrics()
    weight.labels(variant="champion").set(100.0 - challenger)
    weight.labels(variant="challenger").set(challenger)
    weight.labels(variant="shadow").set(100.0 if shadow else 0.0)


def count_decision(verdict: str) -> None:
    _, decisions = _metrics()
    decisions.labels(verdict=verdict).inc()
