"""Synthetic traffic: loopback only, bounded rate, failures counted, timing helpers."""

from __future__ import annotations

import pytest

from petalops.demo.traffic import Traffic, TrafficReport
from petalops.errors import ConfigError


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.1:8000", "http://[::2]"])
def test_traffic_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(ConfigError, match="127.0.0.1"):
        Traffic(url)


def test_traffic_rate_is_bounded() -> None:
    with pytest.raises(ConfigError):
        Traffic("http://127.0.0.1:1", rate=10_000)


def test_unreachable_server_counts_failures_and_stops_by_itself() -> None:
    report = Traffic("http://127.0.0.1:9", rate=20, threads=1, timeout=0.5).run(3.0)
    assert report.sent >= 1
    assert report.failed == report.sent
    assert report.ok == 0


def test_report_timing_helpers() -> None:
    report = TrafficReport()
    report.timeline = [
        (1.0, "1", "champion", "a"),
        (2.0, "2", "challenger", "b"),
        (3.0, "1", "champion", "a"),
    ]
    assert report.first_answer_after(1.5, "2") == 2.0
    assert report.last_answer_from("1") == 3.0
    assert report.last_answer_from("9") is None
