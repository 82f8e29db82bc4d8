"""Everyday commands never import MLflow, scikit-learn or pandas (each costs seconds to
import): what a command imported is read from ``sys.modules`` of a real process at exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from petalops.config import Settings

pytestmark = pytest.mark.slow

HEAVY = ("mlflow", "sklearn", "pandas")
PROBE = (
    "import atexit, json, os, sys\n"
    "heavy = set(json.loads(os.environ['PROBE_HEAVY']))\n"
    "atexit.register(lambda: sys.stderr.write('\\nIMPORTED ' + json.dumps(sorted("
    "{h for h in heavy for m in list(sys.modules) if m == h or m.startswith(h + '.')}"
    ")) + '\\n'))\n"
    "sys.argv[0] = 'petalops'\n"
    "from petalops.cli.app import main\n"
    "main()\n"
)


def imported(
    args: list[str],
    home: Path,
    heavy: tuple[str, ...] = HEAVY,
    extra_env: dict[str, str] | None = None,
) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=home.parent,
        env={
            **env,
            "PETALOPS_HOME": str(home),
            "PROBE_HEAVY": json.dumps(heavy),
            **(extra_env or {}),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    line = out.stderr.strip().splitlines()[-1]
    assert line.startswith("IMPORTED "), out.stderr
    found: list[str] = json.loads(line.removeprefix("IMPORTED "))
    return found


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["registry", "--help"],
        ["config"],
        ["registry", "list"],
        ["registry", "show", "champion"],
        ["rollout", "status"],
        ["rollout", "history"],
        ["monitor", "status"],
        ["predict", "--input", "[5.1,3.5,1.4,0.2]"],
        ["rollout", "start", "2", "--strategy", "canary"],
    ],
    ids=" ".join,
)
def test_everyday_commands_import_no_training_stack(
    args: list[str], trained_settings: Settings
) -> None:
    assert imported(args, trained_settings.home_dir) == []


def test_train_skip_if_unchanged_imports_no_training_stack(trained_settings: Settings) -> None:
    # The same bytes and config as v1 (pipeline.identity's source key): nothing is parsed.
    args = ["train", "--skip-if-unchanged"]
    assert imported(args, trained_settings.home_dir, heavy=(*HEAVY, "numpy")) == []


READ_ONLY = [
    ["registry", "show", "champion"],
    ["rollout", "status"],
    ["rollout", "history"],
    ["monitor", "status"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_read_the_monitoring_database_without_sqlalchemy(
    args: list[str], trained_settings: Settings
) -> None:
    # SQLAlchemy was ~40 % of these commands' time; sqlite3 reads a SQLite file read-only.
    heavy = (*HEAVY, "sqlalchemy")
    assert imported(args, trained_settings.home_dir, heavy=heavy) == []


@pytest.mark.parametrize("args", READ_ONLY, ids=" ".join)
def test_read_only_commands_create_no_monitoring_database(
    args: list[str], trained_settings: Settings, tmp_path: Path
) -> None:
    missing = tmp_path / "not-yet" / "monitor.db"
    env = {"PETALOPS_MONITOR__DB_URL": f"sqlite:///{missing}"}
    assert imported(args, trained_settings.home_dir, heavy=("sqlalchemy",), extra_env=env) == []
    assert not missing.parent.exists()


def test_monitor_status_does_not_import_scipy(trained_settings: Settings) -> None:
    # Only drift needs scipy.stats, the costliest import left in the command.
    assert imported(["monitor", "status"], trained_settings.home_dir, heavy=("scipy",)) == []


def test_predict_imports_cryptography_only_when_keys_are_trusted(
    trained_settings: Settings,
) -> None:
    # Unsigned models are the local default; verifying signatures is what needs it.
    args = ["predict", "--input", "[5.1,3.5,1.4,0.2]"]
    assert imported(args, trained_settings.home_dir, heavy=("cryptography",)) == []


def test_a_command_builds_only_its_own_sub_command_module(trained_settings: Settings) -> None:
    # Typer builds each command from its signature: all ~70 of them took longer than
    # `petalops config` itself; the root group builds the one that is used (LazyGroup).
    others = (
        "petalops.cli.rollout",
        "petalops.cli.monitor",
        "petalops.cli.experiments",
        "petalops.cli.keys",
        "petalops.cli.demo",
        "petalops.cli.audit",
        "petalops.cli.serve",
    )
    probe_heavy = (*others, "petalops.cli.registry")
    found = imported(["registry", "list"], trained_settings.home_dir, heavy=probe_heavy)
    assert found == ["petalops.cli.registry"]
    found = imported(["config"], trained_settings.home_dir, heavy=probe_heavy)
    assert found == []
