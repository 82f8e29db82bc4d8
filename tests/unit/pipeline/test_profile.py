"""The profile step: the reference profile drift detection compares live traffic with."""

from __future__ import annotations

import numpy as np

from petalops.config import DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.pipeline.fit import fit
from petalops.pipeline.profile import SAMPLE_LIMIT, build_profile, training_profile
from petalops.pipeline.split import split

DATA = load_dataset(DataSettings())


def test_each_feature_has_its_range_quantiles_histogram_and_sample() -> None:
    profile = build_profile(DATA.x, DATA.y, DATA.features, DATA.classes)
    stats = profile["features"]["petal_length"]
    assert stats["min"] == float(DATA.x[:, 2].min())
    assert stats["quantiles"]["0.5"] == float(np.median(DATA.x[:, 2]))
    assert sum(stats["histogram"]["counts"]) == 150
    assert len(stats["sample"]) == 150
    assert profile["class_balance"] == dict.fromkeys(DATA.classes, 1 / 3)
    assert "prediction_balance" not in profile


def test_the_sample_is_bounded_and_seeded() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(SAMPLE_LIMIT + 500, 2))
    y = rng.integers(0, 2, len(x))
    a = build_profile(x, y, ["a", "b"], ["no", "yes"], seed=1)
    b = build_profile(x, y, ["a", "b"], ["no", "yes"], seed=1)
    assert len(a["features"]["a"]["sample"]) == SAMPLE_LIMIT
    assert a["features"]["a"]["sample"] == b["features"]["a"]["sample"]


def test_the_training_profile_covers_the_training_rows_and_their_predictions() -> None:
    settings = Settings()
    rows = split(settings, DATA)
    pipeline = fit(settings, rows, DATA.features)
    profile = training_profile(settings, DATA, rows, pipeline)
    assert profile["rows"] == len(rows.y_train) == 120
    assert set(profile["prediction_balance"]) == set(DATA.classes)
    assert abs(sum(profile["prediction_balance"].values()) - 1.0) < 1e-9
