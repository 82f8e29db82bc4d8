"""Serve-time data-quality counters: every served value checked against its version's training
baseline, per feature, and every value refused at the edge.

Four checks, the ones `monitor quality` judges per window (`petalops.monitoring.dataquality`):
``missing`` (NaN or null where the schema allows it), ``out_of_range`` (beyond the training
min/max widened by ``monitor.quality_range_tolerance`` of its width, so the two agree),
``unseen`` (a category training never saw) and ``refused`` (a request answered 400/422 for
its input, attributed to the feature its error names, else ``_request``). The counts go to
``petalops_input_values_total{model_version, feature, check}`` through the batched
`RequestMetrics` (one dict update per failing value, flushed every 0.1 s).

Cheap by construction: a numeric model that takes no missing values (Iris) runs the same
min/max loop the server ran before (for ``petalops_input_out_of_range_total``) and looks at a
row again only when a value fell outside it; models with categories or missing values take
one pass over the row. bench/quality_cost.py measures /predict with and without them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from petalops.serving.holder import Served
from petalops.serving.metrics import RequestMetrics

NO_FEATURE = "_request"
REFUSED_STATUSES = frozenset({400, 422})
# Old plans are dropped wholesale past this many versions (hot swaps over a long life).
MAX_PLANS = 16
_INDEX = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class _Plan:
    """What the checks of one served version need, as plain lists (read per value)."""

    version: str
    names: list[str]
    low: list[float]  # training min/max: petalops_input_out_of_range_total, unchanged
    high: list[float]
    low_tolerated: list[float]  # widened by the tolerance: the out_of_range check
    high_tolerated: list[float]
    categories: dict[int, frozenset[str]]
    simple: bool  # numbers only and never missing: the min/max loop decides
    # The counter keys of each feature, built once: (version, feature, check).
    out_keys: list[tuple[str, str, str]]
    missing_keys: list[tuple[str, str, str]]
    unseen_keys: list[tuple[str, str, str]]


def _plan(served: Served, tolerance: float) -> _Plan:
    runtime = served.runtime
    schema = runtime.schema
    low, high = list(served.feature_min), list(served.feature_max)
    slack = [(hi - lo) * tolerance if hi > lo else 0.0 for lo, hi in zip(low, high, strict=True)]
    return _Plan(
        version=served.version,
        names=list(runtime.features),
        low=low,
        high=high,
        low_tolerated=[lo - s for lo, s in zip(low, slack, strict=True)],
        high_tolerated=[hi + s for hi, s in zip(high, slack, strict=True)],
        categories={j: frozenset(known) for j, known in runtime.categories.items()},
        simple=schema.numeric_only and not any(c.allow_missing for c in schema.columns),
        out_keys=[(served.version, n, "out_of_range") for n in runtime.features],
        missing_keys=[(served.version, n, "missing") for n in runtime.features],
        unseen_keys=[(served.version, n, "unseen") for n in runtime.features],
    )


def feature_at_fault(field: str | None, names: list[str]) -> str:
    """The feature a refusal's ``field`` names: by name (``instances[0].island``), or by
    position in a row (``features[2]``, ``instances[3][2]``); else ``_request`` (a body that
    is not JSON, a row of the wrong width, a bad header)."""
    if not field:
        return NO_FEATURE
    for name in names:
        if field == name or field.endswith(f".{name}") or f".{name}[" in field:
            return name
    indices = _INDEX.findall(field)
    positional = (field.startswith("features[") and len(indices) == 1) or (
        len(indices) >= 2 and field.endswith(f"][{indices[-1]}]")
    )
    if positional and indices and int(indices[-1]) < len(names):
        return names[int(indices[-1])]
    return NO_FEATURE


class InputQuality:
    """The counter hook: :meth:`observe` after each prediction, :meth:`refused` after each
    refusal; both called off the response path by the side channel."""

    def __init__(
        self,
        metrics: RequestMetrics,
        *,
        model_name: str = "",
        features: list[str] | None = None,
        tolerance: float = 0.1,
        enabled: bool = True,
    ) -> None:
        self.metrics = metrics
        self.model_name = model_name
        self.features = list(features or [])
        self.tolerance = tolerance
        self.enabled = enabled
        self._plans: dict[Served, _Plan] = {}

    @classmethod
    def from_settings(
        cls, settings: Any, metrics: RequestMetrics, features: list[str]
    ) -> InputQuality:
        """The hook of a server: ``features`` names the values of a request refused before
        a version was chosen (the API shape's)."""
        return cls(
            metrics,
            model_name=settings.project,
            features=features,
            tolerance=settings.monitor.quality_range_tolerance,
            enabled=settings.serve.quality_counters,
        )

    def _plan_of(self, served: Served) -> _Plan:
        plan = self._plans.get(served)
        if plan is None:
            if len(self._plans) >= MAX_PLANS:
                self._plans.clear()
            plan = self._plans[served] = _plan(served, self.tolerance)
        return plan

    def observe(self, served: Served, rows: list[list[Any]]) -> int:
        """Count the failing values of ``rows`` (validated, in feature order); returns how
        many numbers lay outside the training min/max (the unwidened, older counter)."""
        if not self.enabled:  # exactly what the server did before the counters
            if len(rows) == 1:
                return served.out_of_range(rows[0])
            return sum(served.out_of_range(row) for row in rows)
        plan = self._plan_of(served)
        if plan.simple:
            low, high = plan.low, plan.high
            outside = 0
            for row in rows:
                # zip's strict= keyword is parsed on every call: left out on the hot path.
                for v, lo, hi in zip(row, low, high):  # noqa: B905
                    if v < lo or v > hi:
                        outside += 1
            if outside:  # rare: which features, and beyond the tolerance?
                self._count_numbers(plan, rows)
            return outside
        return self._count(plan, rows)

    def _count_numbers(self, plan: _Plan, rows: list[list[float]]) -> None:
        counts = self.metrics.values
        keys = plan.out_keys
        for row in rows:
            for v, lo, hi, key in zip(
                row, plan.low_tolerated, plan.high_tolerated, keys, strict=False
            ):
                if v < lo or v > hi:
                    counts[key] = counts.get(key, 0) + 1

    def _count(self, plan: _Plan, rows: list[list[Any]]) -> int:
        counts = self.metrics.values
        low, high = plan.low, plan.high
        low_t, high_t = plan.low_tolerated, plan.high_tolerated
        categories = plan.categories
        outside = 0
        for row in rows:
            for j, v in enumerate(row):
                key = None
                if type(v) is float:
                    if v != v:  # NaN: a missing number
                        key = plan.missing_keys[j]
                    elif v < low[j] or v > high[j]:
                        outside += 1
                        if v < low_t[j] or v > high_t[j]:
                            key = plan.out_keys[j]
                elif v is None:
                    key = plan.missing_keys[j]
                elif j in categories and v not in categories[j]:
                    key = plan.unseen_keys[j]
                if key is not None:
                    counts[key] = counts.get(key, 0) + 1
        return outside

    def refused(self, served: Served | None, field: str | None) -> None:
        """Count one request refused at the edge against the feature its error names (and
        the version that was to answer it; ``""`` when it was refused before one was
        chosen)."""
        if not self.enabled:
            return
        feature = feature_at_fault(field, served.features if served is not None else self.features)
        key = (served.version if served is not None else "", feature, "refused")
        self.metrics.value_checks({key: 1})
