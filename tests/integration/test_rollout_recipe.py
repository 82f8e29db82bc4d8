"""The recipe "add a rollout strategy", proven: a strategy defined in this file alone is
offered by the CLI, accepted by the settings and carried out by the real controller on a
real registry and monitoring database, with no other file touched.

Ramp: two steps, 50 % then 100 % of live traffic, from the first moment (no warm-up).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from tests.utils.rollout import TEST_LIMITS, Clock, log_rows
from typer.testing import CliRunner

from petalops.cli.app import app
from petalops.config import Settings
from petalops.rollout.api import rollout_history, start_rollout
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.controller import Controller
from petalops.rollout.plan import Phase, RolloutPlan
from petalops.rollout.routing import Strategy as TrafficStrategy
from petalops.rollout.routing import TrafficPolicy
from petalops.rollout.strategies import registry
from petalops.rollout.strategies.base import Strategy

pytestmark = pytest.mark.slow  # a registry of two trained versions


class Ramp(Strategy):
    """Half the traffic, then all of it; each step judged for one interval."""

    name: ClassVar[str] = "ramp"
    initial_phase: ClassVar[Phase] = "running"
    live_mode: ClassVar[TrafficStrategy] = "canary"
    weights: ClassVar[tuple[float, ...]] = (50.0, 100.0)

    def running_weight(self, plan: RolloutPlan) -> float:
        return self.weights[min(plan.step, len(self.weights) - 1)]

    def n_steps(self, plan: RolloutPlan) -> int:
        return len(self.weights)


@pytest.fixture
def ramp() -> Iterator[None]:
    registry.register(Ramp)
    yield
    registry.unregister(Ramp.name)


@pytest.fixture
def settings(trained_settings: Settings, ramp: None) -> Settings:
    trained_settings.rollout.lease_seconds = 5.0
    trained_settings.rollout.strategy = "ramp"  # the settings accept it once registered
    return trained_settings


def cli(settings: Settings, *args: str) -> str:
    env = {"PETALOPS_HOME": str(settings.home_dir), "COLUMNS": "200"}
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_a_strategy_from_one_file_is_offered_and_driven_end_to_end(settings: Settings) -> None:
    assert registry.names()[-1] == "ramp"
    assert "canary | bluegreen | shadow | shadow-canary | ramp" in cli(
        settings, "rollout", "start", "--help"
    )

    clock = Clock()
    rid = start_rollout(settings, "2", interval_s=10, thresholds=TEST_LIMITS, clock=clock)
    state = ControlPlane(settings).read()
    assert state.traffic == TrafficPolicy("canary", 50.0, 0, rid, state.traffic.updated)
    shown = cli(settings, "rollout", "status")
    assert f"rollout {rid}: ramp of version 2 against 1" in shown
    assert "phase running, step 1/2 (steps -)" in shown

    controller = Controller(settings, clock=clock, holder="recipe")
    plan = controller.tick()
    assert plan is not None
    assert (plan.phase, plan.step, plan.weight) == ("running", 0, 50.0)
    log_rows(settings, clock, "champion", "1", 60)
    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(11)
    plan = controller.tick()
    assert plan is not None
    assert (plan.step, plan.weight) == (1, 100.0)
    assert ControlPlane(settings).read().traffic.weight == 100

    log_rows(settings, clock, "challenger", "2", 60)
    clock.advance(11)
    plan = controller.tick()
    assert plan is not None
    assert plan.phase == "promoted"
    state = ControlPlane(settings).read()
    assert state.aliases == {"champion": "2", "previous": "1"}
    assert state.traffic.strategy == "none"
    events = rollout_history(settings, rid)
    assert [(e["action"], e["strategy"], e["weight"]) for e in events] == [
        ("start", "ramp", 50.0),
        ("advance", "ramp", 100.0),
        ("promote", "ramp", 100.0),
    ]
    assert events[1]["reason"] == "step 1/2 passed; challenger at 100%"
    history = json.loads(cli(settings, "rollout", "history", "--json"))
    assert [e["action"] for e in history] == ["start", "advance", "promote"]


def test_unplugged_the_strategy_is_gone_from_the_choices(tmp_path: Path) -> None:
    assert "ramp" not in registry.names()
    settings = Settings(home=tmp_path / ".petalops")  # type: ignore[call-arg]
    assert "shadow-canary (default: settings)" in cli(settings, "rollout", "start", "--help")
