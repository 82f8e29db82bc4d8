"""The demo server process: its port and its log, without starting it."""

from __future__ import annotations

import socket
from pathlib import Path

from petalops.config import Settings
from petalops.demo.server import ServerProcess, free_port


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_server_that_never_started_stops_quietly(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / ".petalops")  # type: ignore[call-arg]
    server = ServerProcess(settings, workers=2, env={"PETALOPS_SERVE__WORKERS": "2"})
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.log_path == settings.home_dir / f"serve-{server.port}.log"
    server.stop()
    assert server.proc is None
