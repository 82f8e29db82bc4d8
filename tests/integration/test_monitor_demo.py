"""`petalops demo drift`: the loop end to end as the README shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from petalops.config import Settings

pytestmark = pytest.mark.slow


def test_demo_drift_detects_retrains_registers_and_starts_a_rollout(
    tmp_path: Path, empty_settings: Settings
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    env["COLUMNS"] = "160"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "petalops",
            "demo",
            "drift",
            "--normal",
            "200",
            "--shifted",
            "400",
            "--home",
            str(tmp_path / "demo"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "trained and registered the champion: iris/1" in text
    assert "dataset drift: True" in text
    assert "ALERT PetalopsDatasetDrift" in text
    assert "rollout_started" in text
    assert "registered version 2 as challenger" in text
    for step in ("trigger", "data", "trained", "registered"):
        assert f"│ {step} " in text
