"""`petalops ui`: a real MLflow server on the embedded store, on a free local port."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from petalops.config import Settings
from petalops.errors import InputError
from petalops.experiments.ui import port_is_free, start_ui, stop_ui, wait_until_serving

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_ui_serves_the_embedded_store_then_stops(trained_settings: Settings) -> None:
    port = _free_port()
    proc = start_ui(trained_settings, "127.0.0.1", port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(proc, base, timeout=120)
        status, page = _get(f"{base}/")
        assert status == 200
        assert b"<html" in page.lower()
        _, body = _get(f"{base}/api/2.0/mlflow/registered-models/search")
        models = json.loads(body)["registered_models"]
        assert [m["name"] for m in models] == ["iris"]
        _, body = _get(f"{base}/api/2.0/mlflow/experiments/search?max_results=10")
        assert "iris" in [e["name"] for e in json.loads(body)["experiments"]]
    finally:
        stop_ui(proc)
    assert proc.poll() is not None
    assert port_is_free("127.0.0.1", port)
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=2),
    ):
        pass  # nothing listens any more


def test_ui_refuses_a_port_in_use(empty_settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with pytest.raises(InputError, match=f"port {port} on 127.0.0.1 is in use"):
            start_ui(empty_settings, "127.0.0.1", port)
