"""Synthetic traffic: loopback only, bounded rate, failures counted, timing helpers."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

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


class _Stub(BaseHTTPRequestHandler):
    """/v1/predict answers at once; /v1/feedback takes its time (a loaded server)."""

    feedback_calls: ClassVar[list[int]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/feedback":
            time.sleep(0.2)
            type(self).feedback_calls.append(len(body["items"]))
            answer = {"labelled": len(body["items"]), "pending": 0}
        else:
            answer = {
                "request_id": f"r{time.monotonic_ns()}",
                "model_version": "1",
                "variant": "champion",
            }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_traffic_never_waits_on_feedback_and_every_label_is_sent() -> None:
    _Stub.feedback_calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        report = Traffic(url, rate=400, threads=2, feedback=True).run(1.0)
    finally:
        server.shutdown()
        server.server_close()
    assert report.failures == []
    assert report.ok > 0 and report.labelled == report.ok == sum(_Stub.feedback_calls)
    # Batched from one thread: far fewer feedback calls than predictions.
    assert len(_Stub.feedback_calls) < report.ok / 2
