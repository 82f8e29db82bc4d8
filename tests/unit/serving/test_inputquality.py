"""The serve-time data-quality counters: which values count against which check and feature,
on real bundles (a numeric Iris one, a penguins one with categories and missing values)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from tests.utils.tabular import penguins_csv, trained_bundle

from petalops.config import Settings
from petalops.runtime.model import open_bundle
from petalops.serving.holder import Served
from petalops.serving.inputquality import InputQuality, feature_at_fault
from petalops.serving.metrics import RequestMetrics

IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _served(directory: Path, digest: str, name: str, version: str) -> Served:
    runtime = open_bundle(directory, name, version, digest)
    return Served(
        runtime,
        name,
        version,
        digest,
        [float(v) for v in runtime.feature_min],
        [float(v) for v in runtime.feature_max],
    )


@pytest.fixture
def iris(bundle_dirs: dict[str, tuple[Path, str]]) -> Served:
    directory, digest = bundle_dirs["1"]
    return _served(directory, digest, "iris", "1")


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root = tmp_path_factory.mktemp("penguins-quality")
    path = penguins_csv(root)
    settings = Settings(  # type: ignore[call-arg]
        project="penguins",
        home=root / ".petalops",
        data={"source": str(path), "target": "species"},
        model={"class": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
    )
    directory, digest, _, _ = trained_bundle(root / "v1", settings, path)
    return _served(directory, digest, "penguins", "7")


def test_in_range_rows_count_nothing(iris: Served) -> None:
    metrics = RequestMetrics()
    quality = InputQuality(metrics)
    assert quality.observe(iris, [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]) == 0
    assert metrics.values == {}


def test_out_of_range_counts_per_feature_beyond_the_tolerance_only(iris: Served) -> None:
    low, high = iris.feature_min, iris.feature_max
    width = high[0] - low[0]
    slightly = high[0] + 0.05 * width  # outside min/max, inside the 10 % tolerance
    metrics = RequestMetrics()
    quality = InputQuality(metrics, tolerance=0.1)
    outside = quality.observe(iris, [[slightly, 3.5, 1.4, 0.2], [5.1, 99.0, 1.4, -50.0]])
    assert outside == 3  # the older, unwidened counter still sees all three
    assert metrics.values == {
        ("1", "sepal_width", "out_of_range"): 1,
        ("1", "petal_width", "out_of_range"): 1,
    }
    quality.observe(iris, [[5.1, 99.0, 1.4, 0.2]])
    assert metrics.values[("1", "sepal_width", "out_of_range")] == 2


def test_missing_and_unseen_values_of_a_mixed_model(penguins: Served) -> None:
    features = penguins.features
    row: dict[str, Any] = {
        "island": "Atlantis",  # never seen in training
        "bill_length_mm": 46.5,
        "bill_depth_mm": 17.9,
        "flipper_length_mm": 192.0,
        "body_mass_g": math.nan,  # a missing number, as the edge canonicalises it
        "sex": None,  # a missing category
    }
    metrics = RequestMetrics()
    InputQuality(metrics).observe(penguins, [[row[f] for f in features]])
    assert metrics.values == {
        ("7", "island", "unseen"): 1,
        ("7", "body_mass_g", "missing"): 1,
        ("7", "sex", "missing"): 1,
    }


def test_counts_reach_prometheus_on_flush(iris: Served) -> None:
    from prometheus_client import REGISTRY

    labels = {"model_version": "1", "feature": "petal_length", "check": "out_of_range"}
    before = REGISTRY.get_sample_value("petalops_input_values_total", labels) or 0.0
    metrics = RequestMetrics()
    InputQuality(metrics).observe(iris, [[5.1, 3.5, 70.0, 0.2]] * 3)
    metrics.flush()
    assert REGISTRY.get_sample_value("petalops_input_values_total", labels) == before + 3


def test_switched_off_counts_only_the_older_counter(iris: Served) -> None:
    metrics = RequestMetrics()
    quality = InputQuality(metrics, enabled=False)
    assert quality.observe(iris, [[5.1, 99.0, 1.4, 0.2]]) == 1
    quality.refused(iris, "features[1]")
    assert metrics.values == {}


@pytest.mark.parametrize(
    ("field", "feature"),
    [
        ("features[1]", "sepal_width"),
        ("instances[3][2]", "petal_length"),
        ("dataframe_split.data[0][3]", "petal_width"),
        ("instances[0].sepal_length", "sepal_length"),
        ("sepal_width", "sepal_width"),
        ("inputs.petal_width[2]", "petal_width"),
        ("features", "_request"),  # a row of the wrong width
        ("instances[3]", "_request"),  # a row, not a value
        ("features[9]", "_request"),
        ("X-Model-Version", "_request"),
        (None, "_request"),
    ],
)
def test_a_refusal_names_the_feature_its_field_points_at(field: str | None, feature: str) -> None:
    assert feature_at_fault(field, IRIS) == feature


def test_refused_counts_against_the_version_or_none_before_one_was_chosen(iris: Served) -> None:
    metrics = RequestMetrics()
    quality = InputQuality(metrics, features=IRIS)
    quality.refused(iris, "features[2]")
    quality.refused(None, "features")
    assert metrics.values == {
        ("1", "petal_length", "refused"): 1,
        ("", "_request", "refused"): 1,
    }
