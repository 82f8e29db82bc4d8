from __future__ import annotations

import json
import time
import uuid

import pytest

from petalops.rollout.routing import TrafficPolicy, bucket_of, choose_variant


def canary(weight: float, rollout_id: str = "r-20261123-121314", step: int = 1) -> TrafficPolicy:
    return TrafficPolicy(strategy="canary", weight=weight, step=step, rollout_id=rollout_id)


KEYS = [str(uuid.UUID(int=i * 7919 + 13)) for i in range(10_000)]


@pytest.mark.parametrize("weight", [1, 5, 25, 50, 75, 95])
def test_shares_within_two_points_over_10000_keys(weight: float) -> None:
    policy = canary(weight)
    share = sum(choose_variant(policy, k) == "challenger" for k in KEYS) / len(KEYS) * 100
    assert abs(share - weight) <= 2.0


def test_shares_hold_for_sequential_keys_and_other_rollouts() -> None:
    for rollout_id in ("r-a", "r-b", "r-20261123-000000"):
        policy = canary(25, rollout_id)
        keys = [f"client-{i}" for i in range(10_000)]
        share = sum(choose_variant(policy, k) == "challenger" for k in keys) / 100
        assert abs(share - 25) <= 2.0


def test_key_sticks_to_one_variant_within_a_step() -> None:
    policy = canary(50)
    first = {k: choose_variant(policy, k) for k in KEYS[:500]}
    for _ in range(3):
        assert {k: choose_variant(policy, k) for k in KEYS[:500]} == first


def test_challenger_keys_stay_on_challenger_as_weight_grows() -> None:
    previous: set[str] = set()
    for step, weight in enumerate([5, 25, 50, 100]):
        policy = canary(weight, step=step)
        on_challenger = {k for k in KEYS if choose_variant(policy, k) == "challenger"}
        assert previous <= on_challenger
        previous = on_challenger


def test_different_rollouts_pick_different_callers() -> None:
    a = {k for k in KEYS if choose_variant(canary(10, "r-a"), k) == "challenger"}
    b = {k for k in KEYS if choose_variant(canary(10, "r-b"), k) == "challenger"}
    assert a != b


def test_weight_edges() -> None:
    assert all(choose_variant(canary(0), k) == "champion" for k in KEYS[:1000])
    assert all(choose_variant(canary(100), k) == "challenger" for k in KEYS[:1000])
    assert choose_variant(canary(100), "") == "challenger"


@pytest.mark.parametrize("strategy", ["none", "shadow"])
def test_unweighted_strategies_always_answer_with_champion(strategy: str) -> None:
    policy = TrafficPolicy.from_dict({"strategy": strategy, "weight": 100})
    assert policy.strategy == strategy
    assert all(choose_variant(policy, k) == "champion" for k in KEYS[:1000])


def test_bluegreen_uses_the_weight_for_the_flip() -> None:
    assert choose_variant(TrafficPolicy(strategy="bluegreen", weight=0), "k") == "champion"
    assert choose_variant(TrafficPolicy(strategy="bluegreen", weight=100), "k") == "challenger"


def test_bucket_is_stable_and_in_range() -> None:
    assert bucket_of("abc", "r-1") == bucket_of("abc", "r-1")
    assert all(0 <= bucket_of(k) < 10_000 for k in KEYS[:1000])


def test_parse_the_documented_tag() -> None:
    text = (
        '{"strategy": "canary", "weight": 25, "step": 1, '
        '"rollout_id": "r-20261123-121314", "updated": "2026-11-23T12:13:14Z"}'
    )
    policy = TrafficPolicy.parse(text)
    assert policy == TrafficPolicy("canary", 25.0, 1, "r-20261123-121314", "2026-11-23T12:13:14Z")


def test_round_trip_and_integer_weight() -> None:
    policy = canary(25).stamped(step=2)
    text = policy.serialize()
    assert json.loads(text)["weight"] == 25
    assert TrafficPolicy.parse(text) == policy
    assert json.loads(canary(2.5).serialize())["weight"] == 2.5


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "not json",
        "[1, 2]",
        '"canary"',
        '{"strategy": "blue"}',
        '{"strategy": "canary", "weight": "25"}',
        '{"strategy": "canary", "weight": true}',
        '{"strategy": "canary", "weight": NaN}',
        "{",
    ],
)
def test_garbled_tag_means_none(text: str | None) -> None:
    policy = TrafficPolicy.parse(text)
    assert policy.strategy == "none"
    assert choose_variant(policy, "k") == "champion"


def test_weight_is_clamped_and_unknown_fields_ignored() -> None:
    policy = TrafficPolicy.parse('{"strategy": "canary", "weight": 250, "extra": 1, "step": -3}')
    assert (policy.weight, policy.step) == (100.0, 0)
    assert TrafficPolicy.parse('{"strategy": "canary", "weight": -5}').weight == 0.0


def test_choose_variant_is_fast() -> None:
    policy = canary(25)
    keys = KEYS[:2000]
    start = time.perf_counter()
    for _ in range(5):
        for k in keys:
            choose_variant(policy, k)
    per_call = (time.perf_counter() - start) / (5 * len(keys))
    # Generous bound (shared CI cores): a per-request hot path must stay in microseconds.
    assert per_call < 50e-6
