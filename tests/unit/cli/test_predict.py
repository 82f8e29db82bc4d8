"""`petalops predict`: JSON rows with --proba, and file output users can join."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from petalops.cli.app import app
from petalops.cli.common import run_guarded
from petalops.config import Settings

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture
def project(trained_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PETALOPS_HOME", str(trained_settings.home_dir))
    return trained_settings


def test_json_input_with_proba_gives_one_probability_per_class(
    project: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(app, ["predict", "--input", json.dumps(ROWS), "--proba"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["prediction"] == [0, 2]
    assert answer["classes"] == ["setosa", "versicolor", "virginica"]
    assert [max(range(3), key=p.__getitem__) for p in answer["probabilities"]] == [0, 2]
    assert all(sum(p) == pytest.approx(1) for p in answer["probabilities"])


def test_output_into_a_missing_directory_is_refused_and_not_created(
    project: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.csv"
    source.write_text("a,b,c,d\n" + "\n".join(",".join(map(str, r)) for r in ROWS) + "\n")
    missing = tmp_path / "no" / "such" / "dir"
    assert run_guarded(app, ["predict", "-i", str(source), "-o", str(missing / "x.csv")]) == 2
    err = capsys.readouterr().err
    assert f"the directory {missing} does not exist" in err and err.count("\n") == 1
    assert not (tmp_path / "no").exists()


def test_csv_output_carries_ids_class_names_and_probabilities(
    project: Settings, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    header = "id,sepal_length,sepal_width,petal_length,petal_width\n"
    source.write_text(header + "a1,5.1,3.5,1.4,0.2\na2,6.7,3.0,5.2,2.3\n")
    out = tmp_path / "out.csv"
    args = ["predict", "-i", str(source), "-o", str(out), "--proba", "--keep", "id"]
    assert run_guarded(app, args) == 0
    first_line = out.read_text().splitlines()[0]
    assert '"' not in first_line  # unquoted header
    rows = list(csv.DictReader(out.open()))
    assert [(r["id"], r["prediction"], r["prediction_index"]) for r in rows] == [
        ("a1", "setosa", "0"),
        ("a2", "virginica", "2"),
    ]
    assert {"proba_setosa", "proba_versicolor", "proba_virginica"} <= set(rows[0])
