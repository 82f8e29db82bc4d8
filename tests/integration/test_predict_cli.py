"""`petalops predict` as a user runs it, local and on Spark: real processes and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from petalops.config import Settings
from petalops.data.load import IRIS_CLASSES, iris_frame


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "petalops", "predict", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


@pytest.fixture
def home(trained_settings: Settings) -> Path:
    return trained_settings.home_dir.parent


def _iris_with_ids(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    frame = iris_frame().drop(columns=["species"])
    frame.insert(0, "flower_id", [f"F{i:03d}" for i in range(len(frame))])
    source = tmp_path / "iris.parquet"
    frame.to_parquet(source)
    return frame, source


def test_json_input_with_probabilities(home: Path) -> None:
    out = run(["--input", "[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]", "--proba"], home)
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["prediction"] == [0, 2]
    assert answer["classes"] == IRIS_CLASSES
    probabilities = np.asarray(answer["probabilities"])
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert probabilities.argmax(axis=1).tolist() == answer["prediction"]


def test_file_output_carries_ids_class_names_and_probabilities(home: Path, tmp_path: Path) -> None:
    frame, source = _iris_with_ids(tmp_path)
    target = tmp_path / "scored.csv"
    out = run(
        ["--input", str(source), "--output", str(target), "--keep", "flower_id", "--proba"], home
    )
    assert out.returncode == 0, out.stderr
    assert target.read_text().splitlines()[0] == (
        "flower_id,prediction,prediction_index," + ",".join(f"proba_{c}" for c in IRIS_CLASSES)
    )
    scored = pd.read_csv(target)
    assert scored["flower_id"].tolist() == frame["flower_id"].tolist()
    assert set(scored["prediction"]) == set(IRIS_CLASSES)
    assert [IRIS_CLASSES[i] for i in scored["prediction_index"]] == scored["prediction"].tolist()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--keep", "sku"], "--keep 'sku': {source} has no such column; it has ['flower_id', "),
        (["--output", "/nonexistent/dir/x.csv"], "the directory /nonexistent/dir does not exist"),
        (["--output", "{tmp}/x.json"], "must end in .parquet or .csv"),
    ],
)
def test_bad_file_options_are_one_line(
    home: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    _, source = _iris_with_ids(tmp_path)
    if "--output" not in args:
        args = [*args, "--output", str(tmp_path / "out.parquet")]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = run(["--input", str(source), *args], home)
    assert out.returncode == 2, out.stderr
    assert message.format(source=source) in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert not Path("/nonexistent").exists()


def test_keep_needs_a_file_input(home: Path) -> None:
    out = run(["--input", "[5.1,3.5,1.4,0.2]", "--keep", "id"], home)
    assert out.returncode == 2
    assert (
        out.stderr == "error: --keep needs a file --input (.csv or .parquet) to copy columns from\n"
    )


def test_profile_of_a_scored_file_checks_it_against_training(home: Path, tmp_path: Path) -> None:
    frame = iris_frame().drop(columns=["species"])
    frame.loc[:19, "petal_length"] = 30.0  # 20 of 150 rows far past the training range
    source = tmp_path / "batch.parquet"
    frame.to_parquet(source)
    profile = tmp_path / "batch.profile.json"
    out = run(
        [
            "--input",
            str(source),
            "--output",
            str(tmp_path / "s.parquet"),
            "--profile",
            str(profile),
        ],
        home,
    )
    assert out.returncode == 0, out.stderr
    assert f"profile -> {profile}: data quality FAILED (petal_length: out_of_range 13.3%" in (
        out.stderr
    )
    data = json.loads(profile.read_text())
    assert data["rows"] == 150
    assert data["batch"] == {**data["batch"], "model": "iris", "version": "1", "sample_rows": 150}
    assert data["features"]["petal_length"]["max"] == 30.0
    assert data["data_quality"]["features"]["petal_length"]["counts"]["out_of_range"] == 20
    assert set(data["drift"]["features"]) == set(frame.columns)
    assert sum(data["prediction_balance"].values()) == pytest.approx(1.0)


def test_a_bad_profile_path_is_one_line_and_scores_nothing(home: Path, tmp_path: Path) -> None:
    _, source = _iris_with_ids(tmp_path)
    target = tmp_path / "out.parquet"
    out = run(
        ["--input", str(source), "--output", str(target), "--profile", str(tmp_path / "p.txt")],
        home,
    )
    assert out.returncode == 2, out.stderr
    assert (
        out.stderr
        == f"error: --profile {tmp_path}/p.txt must end in .json (or .html for a report)\n"
    )
    assert not target.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "[5.1,3.5,1.4,0.2]"], "--profile needs a file --input"),
        (["--input", "x.parquet", "--output", "o", "--engine", "spark"], "with --engine local"),
    ],
)
def test_profile_needs_a_local_file_input(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    from typer.testing import CliRunner

    from petalops.cli.app import app
    from petalops.errors import InputError

    monkeypatch.chdir(home)
    result = CliRunner().invoke(app, ["predict", *args, "--profile", str(tmp_path / "p.json")])
    assert isinstance(result.exception, InputError)
    assert message in result.exception.message


def test_spark_without_java_is_one_line_before_anything_starts(home: Path, tmp_path: Path) -> None:
    _, source = _iris_with_ids(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PETALOPS_", "JAVA_HOME"))}
    env["PATH"] = str(tmp_path)  # no java on it; this Python is started by its full path
    args = ["--engine", "spark", "--input", str(source), "--output", str(tmp_path / "out")]
    out = subprocess.run(
        [sys.executable, "-m", "petalops", "predict", *args],
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("error: Spark needs Java 17 or newer and no `java` is on PATH")
    assert out.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.spark
@pytest.mark.slow
def test_spark_engine_scores_a_partitioned_directory_like_local(home: Path, tmp_path: Path) -> None:
    """The real command on local[2]: a Hive-partitioned input, the same answers as local."""
    frame, source = _iris_with_ids(tmp_path)
    inputs = tmp_path / "in"
    for i, start in enumerate(range(0, len(frame), 50)):
        (inputs / f"batch={i}").mkdir(parents=True)
        frame.iloc[start : start + 50].to_parquet(inputs / f"batch={i}" / "part-0.parquet")
    local = tmp_path / "local.parquet"
    assert (
        run(
            ["--input", str(source), "--output", str(local), "--keep", "flower_id", "--proba"], home
        ).returncode
        == 0
    )
    target = tmp_path / "scored"
    args = ["--engine", "spark", "--master", "local[2]", "--input", str(inputs)]
    args += ["--output", str(target), "--keep", "flower_id", "--proba"]
    args += ["--spark-conf", "spark.ui.enabled=false"]
    out = run(args, home, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = out.stderr.strip().splitlines()[-1]
    assert summary.startswith("scored 150 rows on Spark local[2] (")
    assert summary.endswith(f"-> {target}, partitioned by batch")
    assert "Traceback" not in out.stderr and "WARN" not in out.stderr.replace(
        "WARNING: Using incubator modules", ""
    )
    got = pd.read_parquet(target).sort_values("flower_id", ignore_index=True)
    expected = pd.read_parquet(local)
    assert sorted(got["batch"].astype(int).unique()) == [0, 1, 2]
    assert got["prediction"].astype(str).tolist() == expected["prediction"].astype(str).tolist()
    columns = ["prediction_index", *(f"proba_{c}" for c in IRIS_CLASSES)]
    np.testing.assert_array_equal(got[columns].to_numpy(), expected[columns].to_numpy())
    again = run(args, home, timeout=600)
    assert again.returncode == 2
    assert again.stderr.endswith(
        f"error: --output {target} already exists; remove it or choose another directory\n"
    )
    shutil.rmtree(target)
