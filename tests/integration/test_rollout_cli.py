"""`petalops rollout ...` through the real command line app, on a real registry."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from petalops.cli.app import app
from petalops.cli.rollout import parse_duration
from petalops.config import Settings
from petalops.errors import ConfigError

pytestmark = pytest.mark.slow


def test_parse_duration() -> None:
    assert parse_duration("90", "--interval") == 90.0
    assert parse_duration("60s", "--interval") == 60.0
    assert parse_duration("10m", "--duration") == 600.0
    assert parse_duration("1.5h", "--duration") == 5400.0
    assert parse_duration("250ms", "--warm") == 0.25
    assert parse_duration(None, "--warm") is None
    with pytest.raises(ConfigError, match="examples: 60s"):
        parse_duration("ten minutes", "--interval")


def invoke(settings: Settings, *args: str) -> tuple[int, str]:
    runner = CliRunner()
    env = {"PETALOPS_HOME": str(settings.home_dir), "COLUMNS": "200"}
    result = runner.invoke(app, ["rollout", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_start_status_abort_history(trained_settings: Settings) -> None:
    code, out = invoke(
        trained_settings,
        "start",
        "2",
        "--strategy",
        "canary",
        "--steps",
        "10,100",
        "--interval",
        "30s",
        "--max-p99-ms",
        "80",
        "--min-samples",
        "50",
        "--json",
    )
    assert code == 0, out
    rollout_id = json.loads(out)["rollout_id"]

    code, out = invoke(trained_settings, "status", "--json")
    assert code == 0, out
    status = json.loads(out)
    assert status["plan"]["rollout_id"] == rollout_id
    assert status["plan"]["steps"] == [10.0, 100.0]
    assert status["plan"]["thresholds"]["max_p99_ms"] == 80.0
    assert status["plan"]["thresholds"]["min_samples"] == 50
    assert status["aliases"]["challenger"] == "2"
    assert status["window"]["decision"] == "inconclusive"

    code, out = invoke(trained_settings, "status")
    assert code == 0
    assert f"rollout {rollout_id}: canary of version 2 against 1" in out

    code, out = invoke(trained_settings, "abort", "--reason", "changed my mind")
    assert code == 0, out
    assert "all traffic on champion 1" in out
    # After the end, status says how it ended (not the last window's "inconclusive").
    code, out = invoke(trained_settings, "status", "--json")
    assert json.loads(out)["outcome"]["phase"] == "aborted"
    code, out = invoke(trained_settings, "status")
    assert "ended: aborted: version 2 stopped by hand; champion 1 kept" in out
    assert "verdict so far" not in out

    code, out = invoke(trained_settings, "history", "--json")
    events = json.loads(out)
    assert [e["action"] for e in events] == ["start", "abort"]
    assert events[-1]["reason"] == "changed my mind"
    code, out = invoke(trained_settings, "history")
    assert "abort" in out
    assert "changed my mind" in out


def test_bad_input_is_one_line_and_exit_2(
    trained_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from petalops.cli.common import run_guarded

    monkeypatch.setenv("PETALOPS_HOME", str(trained_settings.home_dir))
    monkeypatch.setattr("sys.argv", ["petalops", "rollout", "start", "2", "--steps", "50,10"])
    assert run_guarded(app) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: steps '50,10' must increase")
    assert err.count("\n") == 1
    monkeypatch.setattr("sys.argv", ["petalops", "rollout", "start", "99"])
    assert run_guarded(app) == 2
    assert "has no version 99" in capsys.readouterr().err
