"""Data-quality checks of served rows against the training baseline."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from petalops.config import DataSettings
from petalops.data.load import load_dataset
from petalops.errors import DataError
from petalops.monitoring.dataquality import QualityThresholds, data_quality
from petalops.pipeline.profile import build_profile

DATA = load_dataset(DataSettings())
PROFILE = build_profile(DATA.x, DATA.y, DATA.features, DATA.classes)
LIMITS = QualityThresholds(min_rows=20)


def rows(n: int = 100, seed: int = 0) -> list[list[Any]]:
    rng = np.random.default_rng(seed)
    return [list(map(float, DATA.x[i])) for i in rng.integers(0, len(DATA.x), n)]


def test_training_like_rows_pass_every_check() -> None:
    report = data_quality(rows(), PROFILE, LIMITS)
    assert report.passed is True
    assert report.failures == []
    assert set(report.features) == set(DATA.features)
    assert report.features["petal_length"].counts == {
        "missing": 0,
        "wrong_type": 0,
        "out_of_range": 0,
    }


def test_values_beyond_the_range_fail_only_past_the_tolerance() -> None:
    stats = PROFILE["features"]["petal_length"]
    width = stats["max"] - stats["min"]
    window = rows()
    for row in window[:10]:
        row[2] = stats["max"] + 0.05 * width  # inside the 10 % tolerance
    assert data_quality(window, PROFILE, LIMITS).passed is True
    for row in window[:10]:
        row[2] = stats["max"] + 0.5 * width
    report = data_quality(window, PROFILE, LIMITS)
    assert report.passed is False
    assert report.features["petal_length"].failed == ["out_of_range"]
    assert report.features["petal_length"].share("out_of_range") == pytest.approx(0.1)
    assert report.failures == ["petal_length: out_of_range 10.0% (limit 5.0%)"]


def test_missing_values_and_wrong_types_are_counted_per_feature() -> None:
    window = rows()
    for row in window[:8]:
        row[0] = None
    window[9][1] = "wide"
    report = data_quality(window, PROFILE, LIMITS)
    assert report.features["sepal_length"].counts["missing"] == 8
    assert report.features["sepal_length"].failed == ["missing"]
    assert report.features["sepal_width"].counts["wrong_type"] == 1
    assert report.features["sepal_width"].failed == ["wrong_type"]


def test_categories_never_seen_in_training_are_counted() -> None:
    profile = {"features": {"island": {"categories": ["Biscoe", "Dream", "Torgersen"]}}}
    window = [["Biscoe"], ["Dream"], ["Torgersen"]] * 10 + [["Atlantis"]]
    report = data_quality(window, profile, LIMITS)
    island = report.features["island"]
    assert island.kind == "categorical"
    assert island.counts["unseen"] == 1
    assert island.failed == ["unseen"]


def test_a_column_stuck_on_one_value_fails_unless_it_was_constant_in_training() -> None:
    window = rows()
    for row in window:
        row[3] = 0.2
    report = data_quality(window, PROFILE, LIMITS)
    assert report.features["petal_width"].failed == ["constant"]
    profile = {"features": {"flag": {"min": 1.0, "max": 1.0}}}
    assert data_quality([[1.0]] * 30, profile, LIMITS).passed is True


def test_answers_refused_at_the_edge_count_against_the_window() -> None:
    report = data_quality(rows(), PROFILE, LIMITS, refused=5)
    assert report.refused_share == pytest.approx(5 / 105)
    assert report.passed is False
    assert report.failures[-1].startswith("refused at the edge: 4.8%")


def test_a_window_too_small_is_not_judged() -> None:
    report = data_quality(rows(5), PROFILE, LIMITS)
    assert report.passed is None
    assert report.to_json()["passed"] is None
    assert "5 rows, need at least 20" in report.reason


def test_rows_of_another_width_are_refused_with_the_fix() -> None:
    with pytest.raises(DataError, match="its own profile"):
        data_quality([[1.0, 2.0]] * 30, PROFILE, LIMITS)
