"""`petalops demo drift`: the loop end to end as the README shows it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from petalops.cli.app import app
from petalops.config import Settings

pytestmark = pytest.mark.slow


def test_demo_drift_detects_retrains_registers_and_starts_a_rollout(
    empty_settings: Settings,
) -> None:
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "drift",
            "--normal",
            "150",
            "--shifted",
            "300",
            "--home",
            str(empty_settings.home_dir),
        ],
        env={"COLUMNS": "160"},
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "trained and registered the champion: iris/1" in text
    assert "dataset drift: True" in text
    assert "ALERT PetalopsDatasetDrift" in text
    assert "rollout_started" in text
    assert "registered version 2 as challenger" in text
    for step in ("trigger", "data", "trained", "registered"):
        assert f"│ {step} " in text
