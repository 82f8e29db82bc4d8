"""The rollout demo's settings."""

from __future__ import annotations

from pathlib import Path

from petalops.config import Settings
from petalops.demo.rollout import DEMO_RECONCILE_SECONDS, demo_settings


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
