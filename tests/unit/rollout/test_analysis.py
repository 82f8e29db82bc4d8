from __future__ import annotations

import pytest

from petalops.rollout.analysis import (
    Sample,
    Thresholds,
    VariantStats,
    Verdict,
    analyze,
    decide,
    percentile,
    summarize,
)

T = Thresholds(min_samples=100, min_labels=20)


def rows(
    n: int,
    *,
    errors: int = 0,
    latency_ms: float = 2.0,
    slow: int = 0,
    slow_ms: float = 500.0,
    disagree: int = 0,
    labelled: int = 0,
    wrong: int = 0,
) -> list[Sample]:
    out = []
    for i in range(n):
        status = 500 if i < errors else 200
        latency = slow_ms if i >= n - slow else latency_ms
        reference = 0 if i < disagree else 1
        label = None
        if i < labelled:
            label = 2 if i < wrong else 1
        out.append(Sample(status, latency, 1, reference, label))
    return out


def test_percentile_nearest_rank() -> None:
    values = sorted(float(i) for i in range(1, 101))
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 99) is None


def test_summarize_counts_everything() -> None:
    stats = summarize(rows(200, errors=2, disagree=10, labelled=50, wrong=5, slow=3))
    assert stats.requests == 200
    assert stats.errors == 2
    assert stats.error_rate == pytest.approx(0.01)
    # errored rows have no answer to compare
    assert stats.compared == 198
    assert stats.disagreements == 8
    assert stats.labelled == 48
    assert stats.correct == 45
    assert stats.p50_ms == 2.0
    assert stats.p99_ms == 500.0


def test_summarize_4xx_is_not_a_model_error() -> None:
    stats = summarize([Sample(422, 1.0), Sample(200, 1.0, 1, 1)])
    assert stats.errors == 0


def test_healthy_challenger_passes_with_numbers() -> None:
    verdict = analyze(summarize(rows(150)), summarize(rows(150)), T)
    assert verdict.decision == "pass"
    assert verdict.challenger.requests == 150
    by_name = {c.name: c for c in verdict.checks}
    assert by_name["error_rate"].value == 0.0
    assert by_name["p99_ms"].value == 2.0
    assert by_name["disagreement"].passed is True


@pytest.mark.parametrize(
    ("challenger", "failing"),
    [
        (rows(150, errors=5), "error_rate"),
        (rows(150, slow=5), "p99_ms"),
        (rows(150, disagree=60), "disagreement"),
    ],
)
def test_each_breach_fails(challenger: list[Sample], failing: str) -> None:
    verdict = analyze(summarize(challenger), summarize(rows(150)), T)
    assert verdict.decision == "fail"
    assert [c.name for c in verdict.failed_checks] == [failing]
    assert verdict.reasons[0].startswith(failing)


def test_accuracy_floor_and_drop_against_champion() -> None:
    champion = summarize(rows(150, labelled=100, wrong=2))
    worse = summarize(rows(150, labelled=100, wrong=20))
    verdict = analyze(worse, champion, Thresholds(min_samples=100, min_accuracy=0.85))
    assert verdict.decision == "fail"
    assert {c.name for c in verdict.failed_checks} == {"accuracy", "accuracy_drop"}
    fine = summarize(rows(150, labelled=100, wrong=3))
    assert analyze(fine, champion, Thresholds(min_samples=100, min_accuracy=0.85)).decision == (
        "pass"
    )


def test_too_few_labels_skip_accuracy() -> None:
    challenger = summarize(rows(150, labelled=10, wrong=10))
    verdict = analyze(
        challenger, summarize(rows(150)), Thresholds(min_samples=100, min_accuracy=0.9)
    )
    assert verdict.decision == "pass"
    accuracy = next(c for c in verdict.checks if c.name == "accuracy")
    assert accuracy.passed is None


def test_too_few_samples_is_inconclusive_never_pass() -> None:
    verdict = analyze(summarize(rows(99)), summarize(rows(500)), T)
    assert verdict.decision == "inconclusive"
    assert "challenger has 99/100 samples" in verdict.reasons
    verdict = analyze(summarize(rows(500)), summarize(rows(10)), T)
    assert verdict.decision == "inconclusive"
    assert verdict.reasons == ("champion has 10/100 samples",)
    assert analyze(summarize([]), None, T).decision == "inconclusive"


def test_broken_challenger_fails_even_if_champion_is_short() -> None:
    verdict = analyze(summarize(rows(150, errors=50)), summarize(rows(3)), T)
    assert verdict.decision == "fail"


def test_breach_on_few_samples_is_only_inconclusive() -> None:
    verdict = analyze(summarize(rows(20, errors=20)), summarize(rows(500)), T)
    assert verdict.decision == "inconclusive"


def test_bluegreen_window_needs_no_champion() -> None:
    verdict = analyze(summarize(rows(150)), None, T, require_champion=False)
    assert verdict.decision == "pass"


def test_disabled_checks() -> None:
    t = Thresholds(min_samples=100, max_p99_ms=None, max_disagreement=None)
    verdict = analyze(summarize(rows(150, slow=10, disagree=100)), summarize(rows(150)), t)
    assert verdict.decision == "pass"


def test_verdict_round_trips_through_dict() -> None:
    verdict = analyze(summarize(rows(150, errors=5)), summarize(rows(150)), T)
    again = Verdict.from_dict(verdict.to_dict())
    assert again.decision == verdict.decision
    assert again.challenger == verdict.challenger
    assert again.checks == verdict.checks
    assert verdict.to_dict()["challenger"]["error_rate"] == pytest.approx(0.0333, abs=1e-4)


def _verdict(decision: str) -> Verdict:
    return Verdict(decision, ("because",), (), VariantStats())  # type: ignore[arg-type]


def test_decide_advances_then_promotes() -> None:
    assert decide(_verdict("pass"), 0, 4, 0, 3).action == "advance"
    assert decide(_verdict("pass"), 0, 4, 0, 3).next_step == 1
    assert decide(_verdict("pass"), 3, 4, 2, 3).action == "promote"


def test_decide_rolls_back_on_fail() -> None:
    decision = decide(_verdict("fail"), 1, 4, 0, 3)
    assert (decision.action, decision.next_step) == ("rollback", 1)


def test_decide_holds_inconclusive_then_rolls_back_at_the_limit() -> None:
    first = decide(_verdict("inconclusive"), 1, 4, 0, 3)
    assert (first.action, first.inconclusive, first.next_step) == ("hold", 1, 1)
    second = decide(_verdict("inconclusive"), 1, 4, first.inconclusive, 3)
    assert second.action == "hold"
    third = decide(_verdict("inconclusive"), 1, 4, second.inconclusive, 3)
    assert third.action == "rollback"
    assert "inconclusive 3 times" in third.reason


def scored(n: int, confidence: float, *, labelled: int = 0) -> list[Sample]:
    """``n`` rows predicted class 0 with ``confidence`` (the rest split over two classes);
    the first ``labelled`` of them labelled right."""
    rest = (1.0 - confidence) / 2
    return [
        Sample(200, 2.0, 0, None, 0 if i < labelled else None, (confidence, rest, rest))
        for i in range(n)
    ]


def test_summarize_sums_the_calibrated_confidence_in_each_prediction() -> None:
    stats = summarize(scored(100, 0.9))
    assert stats.scored == 100
    assert stats.estimated_accuracy == pytest.approx(0.9)
    # A calibration that says this model is overconfident lowers the estimate.
    softer = {"method": "temperature", "maps": [{"beta": 0.5}], "eps": 1e-6}
    lowered = summarize(scored(100, 0.9), softer).estimated_accuracy
    assert lowered is not None and lowered < 0.9
    assert VariantStats.from_dict(stats.to_dict()).estimated_accuracy == pytest.approx(0.9)


def test_without_labels_the_estimated_accuracy_decides_and_is_named() -> None:
    limits = Thresholds(min_samples=100, min_labels=20, min_accuracy=0.8, max_accuracy_drop=0.05)
    champion = summarize(scored(200, 0.95))
    unsure = analyze(summarize(scored(200, 0.7)), champion, limits)
    assert unsure.decision == "fail"
    assert {c.name for c in unsure.failed_checks} == {
        "estimated_accuracy",
        "estimated_accuracy_drop",
    }
    assert any(r.startswith("estimated_accuracy 0.7 < 0.8") for r in unsure.reasons)
    assert analyze(summarize(scored(200, 0.93)), champion, limits).decision == "pass"


def test_the_estimate_keeps_the_sample_floor_and_yields_to_labels() -> None:
    limits = Thresholds(min_samples=100, min_labels=20, min_accuracy=0.8)
    few = analyze(summarize(scored(50, 0.5)), summarize(scored(200, 0.95)), limits)
    assert few.decision == "inconclusive"
    [check] = [c for c in few.checks if c.name == "estimated_accuracy"]
    assert check.passed is None and check.detail == "not enough scored rows"
    # 30 right labels: the realized accuracy decides, however unsure the probabilities.
    labelled = analyze(
        summarize(scored(200, 0.5, labelled=30)), summarize(scored(200, 0.95)), limits
    )
    assert labelled.decision == "pass"
    [check] = [c for c in labelled.checks if c.name == "estimated_accuracy"]
    assert check.detail == "labels decide"


def test_an_estimated_drop_within_the_windows_noise_does_not_roll_back() -> None:
    # A 0.07 drop on a 40-row canary window is noise (its 95 % band is ~0.08 wide) ...
    limits = Thresholds(min_samples=40, min_labels=20, max_accuracy_drop=0.05)
    small = analyze(summarize(scored(40, 0.90)), summarize(scored(240, 0.97)), limits)
    assert small.decision == "pass"
    [check] = [c for c in small.checks if c.name == "estimated_accuracy_drop"]
    assert check.passed is True and "within noise" in check.detail
    # ... the same drop over 2,000 rows each is not: the bound clears the limit.
    large = analyze(summarize(scored(2000, 0.90)), summarize(scored(2000, 0.97)), limits)
    assert large.decision == "fail"
    assert large.reasons[0].startswith("estimated_accuracy_drop 0.07 > 0.05 (lower 95 % bound")
