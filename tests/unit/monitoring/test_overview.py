"""`monitor quality`'s library function: estimate and data quality per version."""

from __future__ import annotations

from typing import Any

import pytest
from tests.utils.quality import iris_model, iris_records

from petalops.config import Settings
from petalops.errors import InputError, NotFoundError
from petalops.monitoring.overview import estimated_summary, monitor_quality, quality_by_version
from petalops.monitoring.store import MonitorStore


def profiles(version: str) -> dict[str, Any]:
    if version == "9":
        raise NotFoundError("version 9 of iris not found")
    return iris_model()[1]


def test_each_version_gets_its_estimate_realized_figures_and_data_quality(
    store: MonitorStore,
) -> None:
    store.log_predictions(iris_records(300) + iris_records(200, version="2", shift=3.0))
    settings = Settings()
    first, second = monitor_quality(settings, store, profiles=profiles)
    assert (first.model_version, second.model_version) == ("1", "2")
    assert first.estimate.calibration == "temperature"
    assert first.estimate.labelled == 300
    assert first.estimate.accuracy.value == pytest.approx(
        first.estimate.realized["accuracy"], abs=0.05
    )
    assert first.data.passed is True
    assert second.data.passed is False
    assert "out_of_range" in second.data.features["petal_length"].failed
    data = first.to_json()
    assert data["window"]["rows"] == 300
    assert set(data) == {"model_version", "window", "estimated", "data_quality", "timeline"}


def test_the_timeline_estimates_each_chunk_next_to_its_realized_accuracy(
    store: MonitorStore,
) -> None:
    store.log_predictions(iris_records(400))
    [result] = monitor_quality(Settings(), store, chunks=4, profiles=profiles)
    assert [p["rows"] for p in result.timeline] == [100, 100, 100, 100]
    assert all(p["labelled"] == 100 and p["realized"] is not None for p in result.timeline)
    assert [p["ts"] for p in result.timeline] == sorted(p["ts"] for p in result.timeline)


def test_unlabelled_traffic_is_still_estimated(store: MonitorStore) -> None:
    store.log_predictions(iris_records(100, labelled=False))
    [result] = monitor_quality(Settings(), store, profiles=profiles)
    assert result.estimate.accuracy.value is not None
    assert result.estimate.labelled == 0 and result.estimate.realized == {}


def test_an_unreadable_version_is_reported_without_hiding_the_others(
    store: MonitorStore,
) -> None:
    store.log_predictions(iris_records(100) + iris_records(60, version="9"))
    results, errors = quality_by_version(Settings(), store, profiles)
    assert [r.model_version for r in results] == ["1"]
    assert errors == ["version 9: no profile to check against (version 9 of iris not found)"]
    summary = estimated_summary(Settings(), store, profiles)
    assert [row["model_version"] for row in summary["versions"]] == ["1"]
    assert summary["versions"][0]["data_quality"] is True


def test_a_bad_window_is_refused(store: MonitorStore) -> None:
    with pytest.raises(InputError, match="positive number of rows"):
        monitor_quality(Settings(), store, rows=0, profiles=profiles)
