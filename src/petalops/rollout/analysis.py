"""Rollout analysis: pure functions from logged predictions to a verdict and an action.

A step is judged on the challenger's window against absolute thresholds and against the
champion over the same window. Where fewer than ``min_labels`` labels came, the accuracy
checks fall back on the accuracy each variant's calibrated probabilities estimate
(:mod:`petalops.monitoring.estimate`): ``estimated_accuracy`` against ``min_accuracy`` and
``estimated_accuracy_drop`` against ``max_accuracy_drop``, on at least ``min_samples``
scored rows; the failed check's name says which figure decided. Nothing is decided on too
few samples: that verdict is *inconclusive*, which holds the step; after
``max_inconclusive`` inconclusive analyses the rollout is rolled back, so a rollout never
promotes blindly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Literal

Decision = Literal["pass", "fail", "inconclusive"]
Action = Literal["advance", "promote", "hold", "rollback"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Limits a challenger must respect; ``None`` disables a check."""

    max_error_rate: float = 0.01
    max_p99_ms: float | None = 50.0
    max_disagreement: float | None = 0.1
    min_accuracy: float | None = None
    max_accuracy_drop: float | None = 0.05
    min_samples: int = 200
    min_labels: int = 30
    max_inconclusive: int = 5


@dataclass(frozen=True, slots=True)
class Sample:
    """One logged prediction row, as the analysis needs it."""

    status: int
    latency_ms: float
    prediction: int | None = None
    reference_prediction: int | None = None
    label: int | None = None
    probabilities: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class VariantStats:
    """Summary of one variant over a window."""

    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    compared: int = 0
    disagreements: int = 0
    labelled: int = 0
    correct: int = 0
    scored: int = 0  # rows logged with probabilities
    expected_correct: float = 0.0  # their summed calibrated confidence in the predicted class

    @property
    def estimated_accuracy(self) -> float | None:
        return self.expected_correct / self.scored if self.scored else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def disagreement_rate(self) -> float | None:
        return self.disagreements / self.compared if self.compared else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            error_rate=_round(self.error_rate),
            disagreement_rate=_round(self.disagreement_rate),
            accuracy=_round(self.accuracy),
            estimated_accuracy=_round(self.estimated_accuracy),
            expected_correct=_round(self.expected_correct),
            p50_ms=_round(self.p50_ms),
            p99_ms=_round(self.p99_ms),
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VariantStats:
        names = {"requests", "errors", "p50_ms", "p99_ms", "compared", "disagreements"}
        names |= {"labelled", "correct", "scored", "expected_correct"}
        return cls(**{k: v for k, v in data.items() if k in names})


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of an ascending sequence."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def is_error(status: int) -> bool:
    """A server-side failure; 4xx are the caller's mistakes and do not count against a model."""
    return status >= 500


def summarize(samples: Iterable[Sample], calibration: dict[str, Any] | None = None) -> VariantStats:
    """Aggregate one variant's rows: error rate, latency percentiles, disagreement, accuracy,
    and the accuracy its probabilities estimate through ``calibration`` (the version's, from
    its profile; ``None``: the raw probabilities)."""
    latencies: list[float] = []
    errors = compared = disagreements = labelled = correct = 0
    scored_rows: list[tuple[float, ...]] = []
    scored_predictions: list[int] = []
    for s in samples:
        latencies.append(s.latency_ms)
        if is_error(s.status):
            errors += 1
            continue
        if s.prediction is None:
            continue
        if s.reference_prediction is not None:
            compared += 1
            disagreements += s.prediction != s.reference_prediction
        if s.label is not None:
            labelled += 1
            correct += s.prediction == s.label
        if s.probabilities and 0 <= s.prediction < len(s.probabilities):
            scored_rows.append(s.probabilities)
            scored_predictions.append(s.prediction)
    expected = 0.0
    widths = {len(p) for p in scored_rows}
    if len(widths) == 1:
        # Imported here: numpy and the estimate are needed only for a window with scored
        # rows; every `petalops rollout …` command imports this module (via the plan).
        import numpy as np

        from petalops.monitoring.estimate import calibrated

        confidence = calibrated(calibration, np.asarray(scored_rows, dtype=np.float64))
        expected = float(confidence[np.arange(len(scored_rows)), scored_predictions].sum())
    else:  # no scored row, or rows of mixed widths: nothing to estimate from
        scored_rows = []
    latencies.sort()
    return VariantStats(
        requests=len(latencies),
        errors=errors,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        compared=compared,
        disagreements=disagreements,
        labelled=labelled,
        correct=correct,
        scored=len(scored_rows),
        expected_correct=expected,
    )


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold comparison; ``passed`` is ``None`` when there was no data for it."""

    name: str
    value: float | None
    limit: float | None
    passed: bool | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one analysis, with every number it was based on."""

    decision: Decision
    reasons: tuple[str, ...]
    checks: tuple[Check, ...]
    challenger: VariantStats
    champion: VariantStats | None = None

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.passed is False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "checks": [asdict(c) for c in self.checks],
            "challenger": self.challenger.to_dict(),
            "champion": self.champion.to_dict() if self.champion else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        champion = data.get("champion")
        return cls(
            decision=data["decision"],
            reasons=tuple(data.get("reasons", ())),
            checks=tuple(Check(**c) for c in data.get("checks", ())),
            challenger=VariantStats.from_dict(data.get("challenger") or {}),
            champion=VariantStats.from_dict(champion) if champion else None,
        )


def _upper(name: str, value: float | None, limit: float | None, unit: str = "") -> Check:
    if limit is None:
        return Check(name, value, None, None, "disabled")
    if value is None:
        return Check(name, None, limit, None, "no data")
    ok = value <= limit
    sign = "<=" if ok else ">"
    return Check(name, value, limit, ok, f"{value:.4g}{unit} {sign} {limit:.4g}{unit}")


def _lower(name: str, value: float | None, limit: float | None) -> Check:
    if limit is None:
        return Check(name, value, None, None, "disabled")
    if value is None:
        return Check(name, None, limit, None, "not enough labels")
    ok = value >= limit
    sign = ">=" if ok else "<"
    return Check(name, value, limit, ok, f"{value:.4g} {sign} {limit:.4g}")


def analyze(
    challenger: VariantStats,
    champion: VariantStats | None,
    thresholds: Thresholds,
    *,
    require_champion: bool = True,
) -> Verdict:
    """Judge the challenger's window.

    ``require_champion`` is false when the champion answers nothing in the window
    (blue-green after the flip): the challenger is then held to the absolute limits only.
    A failed check with enough samples is a ``fail`` even while the champion is short of
    samples: a broken challenger must leave traffic as fast as possible.
    """
    t = thresholds
    short: list[str] = []
    if challenger.requests < t.min_samples:
        short.append(f"challenger has {challenger.requests}/{t.min_samples} samples")
    if require_champion and (champion is None or champion.requests < t.min_samples):
        have = champion.requests if champion else 0
        short.append(f"champion has {have}/{t.min_samples} samples")

    accuracy = challenger.accuracy if challenger.labelled >= t.min_labels else None
    champion_accuracy = (
        champion.accuracy if champion is not None and champion.labelled >= t.min_labels else None
    )
    drop = (
        champion_accuracy - accuracy
        if accuracy is not None and champion_accuracy is not None
        else None
    )
    # Rates on a handful of compared rows are noise: judge them on the same sample floor.
    disagreement = challenger.disagreement_rate if challenger.compared >= t.min_samples else None
    checks = (
        _upper("error_rate", challenger.error_rate, t.max_error_rate),
        _upper("p99_ms", challenger.p99_ms, t.max_p99_ms, " ms"),
        _upper("disagreement", disagreement, t.max_disagreement),
        _lower("accuracy", accuracy, t.min_accuracy),
        _upper("accuracy_drop", drop, t.max_accuracy_drop),
        *_estimated_checks(challenger, champion, t, labels_decide=accuracy is not None),
    )
    failed = [c for c in checks if c.passed is False]
    if challenger.requests >= t.min_samples and failed:
        reasons = tuple(f"{c.name} {c.detail}" for c in failed)
        return Verdict("fail", reasons, checks, challenger, champion)
    if short:
        return Verdict("inconclusive", tuple(short), checks, challenger, champion)
    return Verdict("pass", ("all checks passed",), checks, challenger, champion)


def _estimated_checks(
    challenger: VariantStats,
    champion: VariantStats | None,
    t: Thresholds,
    *,
    labels_decide: bool,
) -> tuple[Check, Check]:
    """The accuracy checks on estimated accuracy, used only while labels are too few."""
    names = ("estimated_accuracy", "estimated_accuracy_drop")
    if labels_decide:
        return tuple(  # type: ignore[return-value]
            Check(n, None, limit, None, "labels decide")
            for n, limit in zip(names, (t.min_accuracy, t.max_accuracy_drop), strict=True)
        )
    # The same sample floor as every rate: an estimate on a handful of rows is noise.
    estimate = challenger.estimated_accuracy if challenger.scored >= t.min_samples else None
    champion_estimate = (
        champion.estimated_accuracy
        if champion is not None and champion.scored >= t.min_samples
        else None
    )
    drop = (
        champion_estimate - estimate
        if estimate is not None and champion_estimate is not None
        else None
    )
    absolute = _lower(names[0], estimate, t.min_accuracy)
    relative = _upper(names[1], drop, t.max_accuracy_drop)
    if absolute.detail == "not enough labels":
        absolute = Check(names[0], None, t.min_accuracy, None, "not enough scored rows")
    elif absolute.passed is False and estimate is not None and t.min_accuracy is not None:
        # An estimate is a mean over a window: fail it only when even its upper one-sided
        # 95 % bound is under the limit, or a small window decides on noise.
        bound = estimate + _Z95 * _standard_error(estimate, challenger.scored)
        absolute = _banded(absolute, bound < t.min_accuracy, f"upper 95 % bound {bound:.4g}")
    if relative.detail == "no data":
        relative = Check(names[1], None, t.max_accuracy_drop, None, "not enough scored rows")
    elif relative.passed is False and drop is not None and t.max_accuracy_drop is not None:
        # The variants are estimated on different rows, so the drop carries both windows'
        # sampling error: a point comparison rolled healthy challengers back on a 40-row
        # window's noise. The drop must exceed the limit beyond its band.
        assert champion is not None and estimate is not None and champion_estimate is not None
        margin = _Z95 * math.hypot(
            _standard_error(estimate, challenger.scored),
            _standard_error(champion_estimate, champion.scored),
        )
        bound = drop - margin
        relative = _banded(relative, bound > t.max_accuracy_drop, f"lower 95 % bound {bound:.4g}")
    return absolute, relative


# One-sided 95 % normal quantile (1.645) for the estimate checks' bands.
_Z95 = NormalDist().inv_cdf(0.95)


def _standard_error(accuracy: float, n: int) -> float:
    """Standard error of an accuracy over ``n`` rows: each row is right with the probability
    its calibrated confidence gives, so the window's accuracy is a mean of Bernoulli draws
    whose variance, over the traffic's rows, is ``p (1 - p)`` (law of total variance)."""
    return math.sqrt(max(accuracy * (1.0 - accuracy), 0.0) / max(n, 1))


def _banded(check: Check, significant: bool, bound: str) -> Check:
    """A failed point check kept failed only when its confidence bound is past the limit."""
    verdict = "" if significant else ", within noise: passes"
    detail = f"{check.detail} ({bound}{verdict})"
    return Check(check.name, check.value, check.limit, not significant, detail)


@dataclass(frozen=True, slots=True)
class StepDecision:
    """What the controller does after an analysis."""

    action: Action
    reason: str
    next_step: int
    inconclusive: int = field(default=0)


def decide(
    verdict: Verdict, step: int, n_steps: int, inconclusive: int, limit: int
) -> StepDecision:
    """Turn a verdict into an action for a step (0-based) of ``n_steps``.

    ``inconclusive`` counts the earlier inconclusive analyses of this step; the one that
    reaches ``limit`` rolls back.
    """
    if verdict.decision == "fail":
        return StepDecision("rollback", "; ".join(verdict.reasons), step, inconclusive)
    if verdict.decision == "inconclusive":
        held = inconclusive + 1
        if held >= limit:
            reason = f"inconclusive {held} times (limit {limit}): " + "; ".join(verdict.reasons)
            return StepDecision("rollback", reason, step, held)
        return StepDecision("hold", "; ".join(verdict.reasons), step, held)
    if step + 1 >= n_steps:
        return StepDecision("promote", "last step passed", step, 0)
    return StepDecision("advance", f"step {step + 1}/{n_steps} passed", step + 1, 0)
