"""`petalops rollout status | history` read; they never create a store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petalops.cli.app import app
from petalops.cli.common import run_guarded
from petalops.config import Settings


def test_status_outside_a_project_is_one_line_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(app, ["rollout", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model registry at ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_history_without_a_monitoring_database_is_empty_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(app, ["rollout", "history", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert list(tmp_path.iterdir()) == []


def test_status_reads_the_aliases_without_creating_the_monitoring_database(
    trained_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PETALOPS_HOME", str(trained_settings.home_dir))
    (trained_settings.home_dir / "monitor.db").unlink(missing_ok=True)
    assert run_guarded(app, ["rollout", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["aliases"] == {"champion": "1", "challenger": "2"}
    assert status["plan"] is None
    assert not (trained_settings.home_dir / "monitor.db").exists()
