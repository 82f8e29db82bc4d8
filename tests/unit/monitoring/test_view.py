"""The monitoring block's read model for pages: per-variant traffic, bounded reads."""

from __future__ import annotations

import numpy as np
import pytest
from tests.utils.rollout import Clock, log_rows

from petalops.config import Settings
from petalops.monitoring import view
from petalops.monitoring.view import MonitorView


def test_traffic_per_variant_of_the_current_aliases(empty_settings: Settings) -> None:
    clock = Clock()
    log_rows(empty_settings, clock, "champion", "1", 30, latency_ms=3.0)
    log_rows(empty_settings, clock, "challenger", "2", 10, latency_ms=5.0, status=500)
    log_rows(empty_settings, clock, "champion", "0", 7)  # an older champion: not counted
    monitor = MonitorView(empty_settings)
    try:
        traffic = monitor.traffic({"champion": "1", "challenger": "2"}, clock.now + 1)
    finally:
        monitor.close()
    assert traffic["champion"]["requests"] == 30 and traffic["champion"]["error_rate"] == 0
    assert traffic["champion"]["p99_ms"] == pytest.approx(3.0)
    assert traffic["challenger"]["errors"] == 10 and traffic["challenger"]["error_rate"] == 1
    assert traffic["champion"]["seconds"] == view.TRAFFIC_SECONDS


def test_reads_stay_bounded_at_any_rate(
    empty_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest TRAFFIC_ROWS rows stand for the minute, and the alerts' p99 is read from
    as many latencies, however many requests the window holds."""
    monkeypatch.setattr(view, "TRAFFIC_ROWS", 20)
    clock = Clock()
    log_rows(empty_settings, clock, "champion", "1", 50)
    monitor = MonitorView(empty_settings)
    try:
        traffic = monitor.traffic({"champion": "1"}, clock.now + 1)
        count, errors, latencies = monitor.store.recent_requests(clock.now - 60)
    finally:
        monitor.close()
    assert traffic["champion"]["requests"] == 20
    assert traffic["champion"]["seconds"] < view.TRAFFIC_SECONDS  # the newest rows' span
    assert (count, errors) == (50, 0)  # counted in SQL: exact
    assert isinstance(latencies, np.ndarray) and len(latencies) == 20


def test_health_without_a_champion_says_why(empty_settings: Settings) -> None:
    monitor = MonitorView(empty_settings)
    try:
        health = monitor.health({})
    finally:
        monitor.close()
    assert health["drift"] is None and health["timeline"] == []
    assert any("no reference profile" in note for note in health["notes"])
