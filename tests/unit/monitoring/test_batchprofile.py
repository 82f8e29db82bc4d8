"""The profile of a scored batch file: exact counts and moments over every streamed record
batch, the training profile's layout, data-quality checks and drift against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from tests.utils.tabular import penguins_csv, trained_bundle

from petalops.batch import score_file
from petalops.config import DataSettings, MonitorSettings, Settings
from petalops.data.load import load_dataset
from petalops.errors import InputError
from petalops.monitoring.batchprofile import BatchProfile, check_profile_file
from petalops.pipeline.compile import write_bundle
from petalops.pipeline.profile import build_profile
from petalops.runtime.model import ModelRuntime, open_bundle

DATA = load_dataset(DataSettings())
MONITOR = MonitorSettings()


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelRuntime, dict[str, Any]]:
    path = tmp_path_factory.mktemp("bundle")
    pipe = Pipeline([("clf", LogisticRegression(max_iter=200))])
    pipe.fit(pd.DataFrame(DATA.x, columns=DATA.features), DATA.y)
    profile = build_profile(DATA.x, DATA.y, DATA.features, DATA.classes, predicted=DATA.y)
    digest = write_bundle(path, pipe, "iris", DATA.features, DATA.classes, profile, DATA.x)
    return open_bundle(path, "iris", "3", digest), profile


def _scored(
    runtime: ModelRuntime, training: dict[str, Any], frame: pd.DataFrame, tmp_path: Path
) -> BatchProfile:
    source = tmp_path / "in.parquet"
    frame.to_parquet(source)
    profiler = BatchProfile(runtime, training, MONITOR, source=str(source))
    score_file(runtime, source, tmp_path / "out.parquet", batch_rows=1000, observe=profiler.add)
    return profiler


def test_profile_is_exact_over_every_batch_and_samples_the_rest(
    iris: tuple[ModelRuntime, dict[str, Any]], tmp_path: Path
) -> None:
    runtime, training = iris
    rng = np.random.default_rng(3)
    x = DATA.x[rng.integers(0, 150, 12_000)] + rng.normal(0, 0.05, (12_000, 4))
    frame = pd.DataFrame(x, columns=DATA.features)
    profiler = _scored(runtime, training, frame, tmp_path)
    profile = profiler.profile()
    assert profile["rows"] == 12_000
    sepal = profile["features"]["sepal_length"]
    assert sepal["min"] == pytest.approx(x[:, 0].min())
    assert sepal["max"] == pytest.approx(x[:, 0].max())
    assert sepal["mean"] == pytest.approx(x[:, 0].mean())
    assert sepal["std"] == pytest.approx(x[:, 0].std())
    assert len(sepal["sample"]) == 5000  # the uniform sample
    assert set(sepal) >= {"quantiles", "histogram", "missing"}
    expected = np.bincount(runtime.predict(x), minlength=3) / 12_000
    assert list(profile["prediction_balance"].values()) == pytest.approx(expected.tolist())
    document = profiler.document()
    assert document["batch"]["sample_rows"] == 5000
    assert document["data_quality"]["passed"] is True
    assert document["drift"]["dataset_drift"] is False


def test_a_shifted_batch_fails_its_checks_and_drifts(
    iris: tuple[ModelRuntime, dict[str, Any]], tmp_path: Path
) -> None:
    runtime, training = iris
    x = DATA.x.copy()
    x[:, 2] += 10.0  # petal length far past the training range
    profiler = _scored(runtime, training, pd.DataFrame(x, columns=DATA.features), tmp_path)
    quality = profiler.data_quality()
    assert quality.passed is False
    assert quality.features["petal_length"].counts["out_of_range"] == 150
    assert quality.features["sepal_length"].counts["out_of_range"] == 0
    drift = profiler.drift().to_json()
    assert drift["features"]["petal_length"]["drift"] is True
    target = tmp_path / "profile.json"
    profiler.write(target)
    written = json.loads(target.read_text())
    assert written["data_quality"]["failures"][0].startswith("petal_length: out_of_range 100.0%")
    assert not list(tmp_path.glob(".profile.json.partial-*"))
    report = profiler.write(tmp_path / "profile.html")
    assert "data:image/png;base64," in report.read_text()


def test_a_small_batch_is_not_judged(
    iris: tuple[ModelRuntime, dict[str, Any]], tmp_path: Path
) -> None:
    runtime, training = iris
    frame = pd.DataFrame(DATA.x[:10], columns=DATA.features)
    document = _scored(runtime, training, frame, tmp_path).document()
    assert document["data_quality"]["passed"] is None
    assert "10 rows, need at least 50" in document["data_quality"]["reason"]
    assert document["drift"]["dataset_drift"] is None


def test_mixed_types_count_missing_and_unseen_categories(tmp_path: Path) -> None:
    path = penguins_csv(tmp_path)
    settings = Settings(  # type: ignore[call-arg]
        project="penguins",
        home=tmp_path / ".petalops",
        data={"source": str(path), "target": "species"},
        model={"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
    )
    directory, digest, _, _ = trained_bundle(tmp_path / "v1", settings, path)
    runtime = open_bundle(directory, "penguins", "1", digest)
    training = json.loads((directory / "profile.json").read_text())
    frame = pd.read_csv(path).drop(columns=["species"])
    frame.loc[:9, "island"] = "Atlantis"
    source = tmp_path / "batch.csv"
    frame.to_csv(source, index=False)
    profiler = BatchProfile(runtime, training, MONITOR, source=str(source))
    score_file(runtime, source, tmp_path / "out.csv", observe=profiler.add)
    quality = profiler.data_quality()
    island = quality.features["island"]
    assert island.counts["unseen"] == 10
    assert "unseen" in island.failed  # 10 of 344 rows is over the 1 % limit
    sex_missing = int(frame["sex"].isna().sum())
    assert quality.features["sex"].counts["missing"] == sex_missing
    profile = profiler.profile()
    assert profile["features"]["island"]["categories"]["Atlantis"] == pytest.approx(10 / 344)
    assert profile["rows"] == 344


def test_the_profile_path_is_checked_first(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"must end in \.json"):
        check_profile_file(tmp_path / "profile.txt")
    with pytest.raises(InputError, match="does not exist; create it first"):
        check_profile_file(tmp_path / "nowhere" / "profile.json")
