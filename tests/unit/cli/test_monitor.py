"""`petalops monitor status`, `quality` and `skew` read; they never create the monitoring
database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petalops.cli.app import app
from petalops.cli.common import run_guarded


def test_status_without_a_monitoring_database_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(app, ["monitor", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [["monitor", "quality", "--json"], ["monitor", "skew", "--version", "1", "--json"]],
)
def test_quality_and_skew_outside_a_project_create_nothing(tmp_path: Path, args: list[str]) -> None:
    run_guarded(app, args)
    assert list(tmp_path.iterdir()) == []
