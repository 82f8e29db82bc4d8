from __future__ import annotations

from prometheus_client import REGISTRY

from petalops.rollout import metrics


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_weight_and_decisions_are_exported() -> None:
    metrics.set_weight(25.0)
    assert value("petalops_rollout_weight", variant="challenger") == 25.0
    assert value("petalops_rollout_weight", variant="champion") == 75.0
    metrics.set_weight(0.0, shadow=True)
    assert value("petalops_rollout_weight", variant="shadow") == 100.0
    before = value("petalops_rollout_decisions_total", verdict="rollback") or 0.0
    metrics.count_decision("rollback")
    assert value("petalops_rollout_decisions_total", verdict="rollback") == before + 1
