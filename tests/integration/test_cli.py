"""The `petalops` command as a user runs it: real processes, real exit codes and output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from petalops.config import Settings
from petalops.data.load import iris_frame


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "petalops", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=full_env,
    )


@pytest.fixture
def home(trained_settings: Settings) -> Path:
    return trained_settings.home_dir.parent


def test_predict_prints_the_tutorial_output(home: Path) -> None:
    out = run(["predict", "--input", "[5.1,3.5,1.4,0.2]"], home)
    assert out.returncode == 0, out.stderr
    assert out.stdout == '{"prediction": [0]}\n'
    many = run(
        ["predict", "--input", "[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]", "--model", "iris/2"], home
    )
    assert json.loads(many.stdout) == {"prediction": [0, 2]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--input", "[1,2]"], "has 2 values, the model expects 4"),
        (["predict", "--input", "oops"], "neither a file nor JSON"),
        (["predict", "--input", "[5.1,3.5,1.4,0.2]", "--model", "iris/99"], "has no version 99"),
        (["train", "--set", "gate.min_accuracy=2"], "invalid setting gate.min_accuracy=2"),
        (["train", "--set", "model.class=sklearn.nope.Thing"], "cannot be imported"),
        (["train", "--data", "missing.csv"], "does not exist"),
        (["registry", "show", "77"], "has no version 77"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(home: Path, args: list[str], message: str) -> None:
    out = run(args, home)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_failed_gate_exits_1(home: Path) -> None:
    out = run(["train", "--set", "gate.min_accuracy=1.0"], home)
    assert out.returncode == 1
    assert "quality gate failed, nothing registered" in out.stderr


def test_invalid_env_is_reported(home: Path) -> None:
    out = run(["predict", "--input", "[5.1,3.5,1.4,0.2]"], home, {"PETALOPS_SEED": "x"})
    assert out.returncode == 2
    assert "seed='x'" in out.stderr


def test_train_with_data_file_and_export(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    iris_frame().to_csv(data, index=False)
    out = run(["train", "--data", str(data), "--export", "artifacts", "--json"], home)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["version"] == "3" and report["alias"] == "challenger"
    assert json.loads((home / "artifacts" / "metrics.json").read_text())["accuracy"] > 0.9
    listing = json.loads(run(["registry", "list", "--json"], home).stdout)
    assert [(v["version"], v["aliases"]) for v in listing][:3] == [
        ("3", ["challenger"]),
        ("2", []),
        ("1", ["champion"]),
    ]


def test_alias_set_and_rm(home: Path) -> None:
    assert run(["registry", "alias", "set", "champion", "2"], home).returncode == 0
    shown = json.loads(run(["registry", "show", "champion", "--json"], home).stdout)
    assert shown["version"] == "2" and "champion" in shown["aliases"]
    assert run(["registry", "alias", "rm", "challenger"], home).returncode == 0
    missing = run(["registry", "alias", "rm", "challenger"], home)
    assert missing.returncode == 2 and "no alias 'challenger'" in missing.stderr


def test_score_a_file(home: Path, tmp_path: Path) -> None:
    frame = iris_frame().drop(columns=["species"])
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    out = run(
        ["predict", "--input", str(source), "--output", str(tmp_path / "out.csv"), "--proba"], home
    )
    assert out.returncode == 0, out.stderr
    scored = pd.read_csv(tmp_path / "out.csv")
    assert len(scored) == 150
    assert scored["prediction"].tolist()[:3] == ["setosa"] * 3
    assert scored["prediction_index"].tolist()[:3] == [0, 0, 0]
    assert list(scored.columns) == [
        "prediction",
        "prediction_index",
        "proba_setosa",
        "proba_versicolor",
        "proba_virginica",
    ]
