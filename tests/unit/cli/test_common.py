"""A command whose stack an install leaves out (the serve-only image) fails in one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from petalops.cli.common import run_guarded

BLOCK = (
    "import sys; sys.modules.update(dict.fromkeys(['sklearn', 'mlflow', 'pandas'])); "
    "sys.argv[0] = 'petalops'; from petalops.cli.app import main; main()"
)


def test_train_without_scikit_learn_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    out = subprocess.run(
        [sys.executable, "-c", BLOCK, "train"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert "needs the Python package" in lines[0] and "full image" in lines[0]


def test_a_missing_petalops_module_is_not_passed_off_as_a_slim_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = typer.Typer()

    @app.command()
    def broken() -> None:
        raise ModuleNotFoundError("No module named 'petalops.nope'", name="petalops.nope")

    monkeypatch.setattr(sys, "argv", ["petalops"])
    with pytest.raises(ModuleNotFoundError, match="petalops.nope"):
        run_guarded(app)


def test_reading_an_absent_monitoring_database_creates_none(tmp_path: Path) -> None:
    from petalops.cli.common import reading
    from petalops.config import Settings

    settings = Settings(home=tmp_path / ".petalops")
    assert reading(settings).monitor_url == "sqlite://"  # empty, in memory
    (tmp_path / ".petalops").mkdir()
    (tmp_path / ".petalops" / "monitor.db").write_bytes(b"")
    assert reading(settings).monitor_url == settings.monitor_url
