"""The HTML quality report: one self-contained file with the estimated-vs-realized chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.utils.quality import iris_model, iris_records

from petalops.config import Settings
from petalops.monitoring.overview import monitor_quality
from petalops.monitoring.quality_report import render_quality_html, write_quality_html
from petalops.monitoring.store import MonitorStore


def profiles(version: str) -> dict[str, Any]:
    return iris_model()[1]


def test_the_report_embeds_the_chart_and_the_tables(store: MonitorStore, tmp_path: Path) -> None:
    store.log_predictions(iris_records(300) + iris_records(100, version="2", shift=3.0))
    results = monitor_quality(Settings(), store, chunks=2, profiles=profiles)
    path = write_quality_html(tmp_path / "quality.html", results)
    text = path.read_text(encoding="utf-8")
    assert text.count("data:image/png;base64,") == 2
    assert "<h2>version 1</h2>" in text and "<h2>version 2</h2>" in text
    assert "FAILED" in text  # version 2's rows are out of the training range
    assert "src='http" not in text and "<script" not in text
    assert not (tmp_path / "quality.html.partial").exists()


def test_a_window_too_small_has_no_chart_and_says_why(store: MonitorStore) -> None:
    store.log_predictions(iris_records(10))
    text = render_quality_html(monitor_quality(Settings(), store, chunks=5, profiles=profiles))
    assert "data:image/png" not in text
    assert "window too small to estimate" in text
    assert "not judged" in text
