"""update_gauges: the call the server makes to publish drift and live quality on /metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from prometheus_client import REGISTRY
from sklearn.datasets import load_iris
from tests.utils.quality import iris_model, iris_records

from petalops.config import Settings
from petalops.monitoring import overview
from petalops.monitoring.metrics import update_estimate_gauges, update_gauges
from petalops.monitoring.store import MonitorStore
from petalops.pipeline.profile import build_profile

NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_gauges_follow_the_store(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    settings = Settings(project="gauges", monitor={"drift_window": 150})  # type: ignore[arg-type]
    x, y = load_iris(return_X_y=True)
    profile = build_profile(x, y, NAMES, ["setosa", "versicolor", "virginica"], predicted=y)
    rows = x.copy()
    rows[:, 2:] *= 1.7  # petal features shifted
    store.log_predictions(
        make_record(
            f"g{i}",
            model_name="gauges",
            model_version="7",
            features=rows[i].tolist(),
            prediction=int(y[i]),
            label=int(y[i]) if i % 5 else (int(y[i]) + 1) % 3,
        )
        for i in range(150)
    )
    report = update_gauges(settings, store, profile)
    assert report is not None
    assert gauge("petalops_dataset_drift") == 1.0
    assert gauge("petalops_feature_drift", feature="petal_length") == 1.0
    assert gauge("petalops_feature_drift", feature="sepal_width") == 0.0
    ks = gauge("petalops_drift_score", feature="petal_length", test="ks")
    assert ks == report.features["petal_length"].statistic
    assert gauge("petalops_live_accuracy", model_version="7", variant="champion") == 0.8
    f1 = gauge("petalops_live_f1", model_version="7", variant="champion")
    assert f1 is not None
    assert 0.7 < f1 < 0.9

    # Back to normal traffic: the gauges follow.
    store.log_predictions(
        make_record(
            f"n{i}",
            model_name="gauges",
            model_version="7",
            features=x[i].tolist(),
            prediction=int(y[i]),
        )
        for i in np.random.default_rng(0).permutation(150)
    )
    update_gauges(settings, store, profile)
    assert gauge("petalops_dataset_drift") == 0.0


def test_a_failure_is_logged_not_raised(store: MonitorStore) -> None:
    settings = Settings()
    store.close()
    broken = MonitorStore.__new__(MonitorStore)  # a store whose database is gone
    broken.engine = None  # type: ignore[assignment]
    assert update_gauges(settings, broken, {"features": {}}) is None


def test_refresher_follows_the_champion_in_the_background(trained_settings: Settings) -> None:
    import time

    from petalops.monitoring.metrics import champion_profile, start_gauge_refresher

    profile = champion_profile(trained_settings)
    assert profile is not None
    assert list(profile["features"]) == NAMES
    store = MonitorStore.from_settings(trained_settings)
    x, y = load_iris(return_X_y=True)
    store.log_predictions(
        {
            "request_id": f"t{i}",
            "model_name": "iris",
            "model_version": "1",
            "features": (x[i] * [1.0, 1.0, 1.8, 1.8]).tolist(),
            "prediction": int(y[i]),
            "label": int(y[i]),
        }
        for i in range(150)
    )
    refresher = start_gauge_refresher(trained_settings, store, interval=0.05)
    deadline = time.monotonic() + 20
    while refresher.runs < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    refresher.stop()
    assert refresher.runs >= 1
    assert gauge("petalops_feature_drift", feature="petal_width") == 1.0
    assert gauge("petalops_live_accuracy", model_version="1", variant="champion") == 1.0
    store.close()


def test_no_champion_no_profile(empty_settings: Settings) -> None:
    from petalops.monitoring.metrics import champion_profile

    assert champion_profile(empty_settings) is None


def test_estimate_gauges_publish_each_versions_estimate_and_data_quality(
    store: MonitorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(project="iris")
    store.log_predictions(
        iris_records(200, version="31") + iris_records(100, version="32", shift=3.0)
    )
    profile = iris_model()[1]
    monkeypatch.setattr(overview, "registry_profiles", lambda _settings: lambda _v: profile)
    results = update_estimate_gauges(settings, store)
    assert results is not None and [r.model_version for r in results] == ["31", "32"]
    estimated = gauge("petalops_estimated_accuracy", model_version="31")
    assert estimated == pytest.approx(results[0].estimate.accuracy.value)
    low = gauge("petalops_estimated_accuracy_band", model_version="31", side="low")
    assert low is not None and estimated is not None and low <= estimated
    failed = {"model_version": "32", "feature": "petal_length", "check": "out_of_range"}
    assert gauge("petalops_data_quality_failed", **failed) == 1.0
    assert gauge("petalops_data_quality_failed", **{**failed, "model_version": "31"}) == 0.0
    assert gauge("petalops_data_quality_share", **failed) == pytest.approx(
        results[1].data.features["petal_length"].share("out_of_range")
    )


def test_estimate_gauges_never_raise(store: MonitorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("store gone")

    monkeypatch.setattr(overview, "versions", broken)
    assert update_estimate_gauges(Settings(), store) is None
