"""The decision record: one row per decision with its numbers, a metric and a log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from tests.utils.rollout import passing_verdict

from petalops.rollout import history
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.store import RolloutStore


def plan(**changes: object) -> RolloutPlan:
    return RolloutPlan("r-7", "canary", "2", "1", steps=(10.0, 100.0)).evolve(**changes)


def test_a_decision_is_stored_with_the_plan_after_it_and_its_verdict(tmp_path: Path) -> None:
    store = RolloutStore(f"sqlite:///{tmp_path / 'monitor.db'}")
    history.record(
        store,
        "iris",
        plan(phase="running", step=0),
        "advance",
        "warm",
        actor="me",
        detail={"extra": 1},
    )
    history.record(
        store,
        "iris",
        plan(phase="promoted", step=1),
        "promote",
        "done",
        actor="me",
        verdict=passing_verdict(),
    )
    first, last = store.history("iris", rollout_id="r-7")
    assert (first["action"], first["phase"], first["weight"], first["verdict"]) == (
        "advance",
        "running",
        10.0,
        None,
    )
    assert first["detail"] == {"extra": 1}
    assert (first["champion_version"], first["challenger_version"], first["actor"]) == (
        "1",
        "2",
        "me",
    )
    # A promoted plan answers nothing any more, but the decision put it at 100 %.
    assert (last["weight"], last["verdict"]) == (100.0, "pass")
    assert last["detail"]["verdict"]["challenger"]["requests"] == 100
    store.close()


def test_announce_counts_and_logs_with_the_challengers_numbers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def count() -> float:
        value = REGISTRY.get_sample_value("petalops_rollout_decisions_total", {"verdict": "hold"})
        return value or 0.0

    before = count()
    with caplog.at_level(logging.INFO, logger="petalops.rollout"):
        history.announce(plan(phase="running", step=1), "hold", "not yet", passing_verdict())
    assert count() == before + 1
    [line] = [r.getMessage() for r in caplog.records if r.name == "petalops.rollout"]
    assert line.startswith("rollout r-7 hold: canary step 2 weight 100% — not yet")
    assert "challenger n=100 err=0.0 p99=2.0ms" in line
