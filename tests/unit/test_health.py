"""The heartbeat probe of the rollout controller and the monitor."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from petalops.health import HEARTBEAT_ENV, beat, heartbeat_path, main, problem


def test_a_fresh_heartbeat_is_healthy_a_stale_or_missing_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(HEARTBEAT_ENV, raising=False)
    assert "no heartbeat" in (problem(tmp_path, "rollout", 60) or "")
    beat(tmp_path, "rollout")
    assert heartbeat_path(tmp_path, "rollout") == tmp_path / "health" / "rollout.heartbeat"
    assert problem(tmp_path, "rollout", 60) is None
    stale = problem(tmp_path, "rollout", 60, now=time.time() + 120)
    assert stale is not None and "last beat" in stale
    assert main(["rollout", "--home", str(tmp_path)]) == 0
    assert main(["monitor", "--home", str(tmp_path)]) == 1


def test_the_probe_command_exits_1_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "petalops.health", "monitor", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("unhealthy: no heartbeat") and result.stderr.count("\n") == 1


def test_the_controller_loop_beats(
    trained_settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from petalops.config import Settings
    from petalops.rollout.controller import Controller

    assert isinstance(trained_settings, Settings)
    monkeypatch.delenv(HEARTBEAT_ENV, raising=False)
    stop = threading.Event()
    Controller(trained_settings).run(stop, on_tick=lambda _plan: stop.set())
    assert problem(trained_settings.home_dir, "rollout", 60) is None
