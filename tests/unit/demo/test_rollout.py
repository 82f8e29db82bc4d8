"""The rollout demo's settings and the way it prints decisions."""

from __future__ import annotations

from pathlib import Path

from tests.utils.rollout import passing_verdict

from petalops.config import Settings
from petalops.demo.rollout import DEMO_RECONCILE_SECONDS, DecisionPrinter, demo_settings
from petalops.rollout import history
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.store import RolloutStore


def test_demo_settings_use_fresh_embedded_stores(tmp_path: Path) -> None:
    base = Settings(home=tmp_path / ".petalops", mlflow_uri="http://127.0.0.1:5000")  # type: ignore[call-arg]
    default = base.home_dir / "demo-rollout"
    (default / "old").mkdir(parents=True)
    settings = demo_settings(base, None)
    assert not (default / "old").exists()
    assert (settings.home_dir, settings.mlflow_uri, settings.monitor.db_url) == (default, "", "")
    assert settings.reconcile_seconds == DEMO_RECONCILE_SECONDS
    mine = tmp_path / "mine"
    (mine / "keep").mkdir(parents=True)
    assert demo_settings(base, mine).home == mine
    assert (mine / "keep").exists()


def test_each_decision_is_said_once_with_its_numbers(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / ".petalops")  # type: ignore[call-arg]
    store = RolloutStore(settings.monitor_url)
    plan = RolloutPlan("r-1", "canary", "2", "1", steps=(10.0, 100.0), phase="running")
    history.record(store, settings.project, plan, "advance", "warm", actor="t")
    lines: list[str] = []
    printer = DecisionPrinter(settings, "r-1", started=0.0, say=lines.append)
    printer(None)
    history.record(
        store, settings.project, plan, "hold", "not yet", actor="t", verdict=passing_verdict()
    )
    printer(None)
    printer(None)
    store.close()
    assert len(lines) == 2
    assert "advance  weight    10%  warm" in lines[0]
    assert lines[0].endswith("warm")
    assert lines[1].endswith(
        "hold     weight    10%  not yet  [challenger n=100 p99=2.0ms errors=0.0% disagree=-]"
    )
