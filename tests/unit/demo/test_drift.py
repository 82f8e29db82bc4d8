"""The drift demo's pieces: its traffic, its stores and its feature choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from petalops.config import Settings
from petalops.demo.drift import drift_settings, feature_columns, shifted_traffic
from petalops.errors import ConfigError


def test_shifted_traffic_scales_only_the_chosen_features_up_to_the_end() -> None:
    x, y = shifted_traffic(400, 1.5, [2], seed=3)
    plain, same_labels = shifted_traffic(400, 1.0, [2], seed=3)
    assert x.shape == (400, 4)
    assert y.dtype == np.int64
    assert set(np.unique(y)) <= {0, 1, 2}
    np.testing.assert_array_equal(y, same_labels)
    np.testing.assert_allclose(x[:, [0, 1, 3]], plain[:, [0, 1, 3]])
    ratio = x[:, 2] / plain[:, 2]
    assert ratio[:20].mean() == pytest.approx(1.0, abs=0.05)
    assert ratio[-20:].mean() == pytest.approx(1.5, abs=0.05)


def test_feature_columns_default_to_all_and_name_the_valid_ones(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)  # type: ignore[call-arg]
    names, columns = feature_columns(settings, None)
    assert (names, columns) == (settings.data.features, [0, 1, 2, 3])
    assert feature_columns(settings, ["petal_width"]) == (["petal_width"], [3])
    with pytest.raises(ConfigError, match=r"unknown feature\(s\) \['petal'\]; choose from"):
        feature_columns(settings, ["petal"])


def test_only_the_default_demo_directory_is_wiped(tmp_path: Path) -> None:
    base = Settings(home=tmp_path / ".petalops")  # type: ignore[call-arg]
    default = base.home_dir / "demo"
    (default / "old").mkdir(parents=True)
    settings, stores = drift_settings(base, None, None)
    assert stores == default
    assert not (default / "old").exists()
    assert (settings.home_dir, settings.mlflow_uri, settings.monitor.db_url) == (default, "", "")
    assert settings.experiment == f"{base.project}-demo"

    mine = tmp_path / "mine"
    (mine / "keep").mkdir(parents=True)
    settings, stores = drift_settings(base, mine, None)
    assert (mine / "keep").exists()
    assert stores == mine


def test_with_a_server_its_own_stores_are_used(tmp_path: Path) -> None:
    base = Settings(home=tmp_path / ".petalops", mlflow_uri="http://127.0.0.1:5000")  # type: ignore[call-arg]
    settings, stores = drift_settings(base, None, "http://127.0.0.1:8000")
    assert settings is base
    assert stores == base.home_dir
