"""`petalops registry list | show`: read through the no-MLflow path, create nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petalops.cli.app import app
from petalops.cli.common import run_guarded
from petalops.config import Settings


@pytest.mark.parametrize("args", [["registry", "list"], ["registry", "show", "champion"]])
def test_outside_a_project_it_is_one_line_and_creates_nothing(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(app, args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model registry at ") and err.count("\n") == 1
    assert "run `petalops train` first" in err
    assert list(tmp_path.iterdir()) == []


def test_list_shows_every_version_with_its_aliases(
    trained_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PETALOPS_HOME", str(trained_settings.home_dir))
    assert run_guarded(app, ["registry", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["version"], r["aliases"]) for r in rows] == [
        ("2", ["challenger"]),
        ("1", ["champion"]),
    ]
    assert all(0.5 < r["accuracy"] <= 1 and len(r["sha256"]) == 12 for r in rows)


def test_show_gives_the_lineage_of_an_alias(
    trained_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PETALOPS_HOME", str(trained_settings.home_dir))
    assert run_guarded(app, ["registry", "show", "challenger", "--json"]) == 0
    details = json.loads(capsys.readouterr().out)
    assert (details["version"], details["aliases"]) == ("2", ["challenger"])
    assert details["params"]["model.params.C"] == "0.3"
    assert details["gate"] == "passed" and details["gate_checks"]
    assert details["metrics"]["accuracy"] > 0.5
