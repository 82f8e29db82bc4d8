"""`petalops serve` logs predictions through the spool: rows reach the store within ~1 s,
every answered row exactly once, and nothing is left behind at shutdown."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.utils.server_process import ServerProcess

from petalops.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROW = [5.1, 3.5, 1.4, 0.2]


def _logged(home: Path) -> list[str]:
    with sqlite3.connect(home / "monitor.db") as con:
        return [r[0] for r in con.execute("SELECT request_id FROM predictions")]


def test_rows_arrive_once_within_the_bound_and_shutdown_loads_the_rest(
    trained_settings: Settings,
) -> None:
    home = trained_settings.home_dir
    server = ServerProcess(home, workers=2)
    try:
        server.wait_until("/readyz")
        for i in range(20):  # a new connection each time spreads them over both workers
            sent = httpx.post(
                server.url + "/predict", json={"features": ROW}, headers={"X-Request-ID": f"s{i}"}
            )
            assert sent.status_code == 200
        answered = time.monotonic()
        while len(_logged(home)) < 20 and time.monotonic() - answered < 10:
            time.sleep(0.05)
        assert sorted(_logged(home)) == sorted(f"s{i}" for i in range(20))
        assert time.monotonic() - answered <= 2.0
        assert list((home / "spool").glob("*.jsonl")) == []

        done: list[str] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as client:
                n = 0
                while not stop.is_set():
                    request_id = f"t{n}"
                    n += 1
                    try:
                        response = client.post(
                            "/predict", json={"features": ROW}, headers={"X-Request-ID": request_id}
                        )
                    except httpx.HTTPError:
                        return
                    if response.status_code == 200:
                        done.append(request_id)

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(1.0)
    finally:
        code = server.stop()
    stop.set()
    thread.join(10)
    assert code in (0, -15), server.output()
    logged = [r for r in _logged(home) if r.startswith("t")]
    assert done
    assert sorted(logged) == sorted(done)  # each answered row once, none lost at shutdown
    locks = ("loader.lock", "writers.lock")  # the loader's flock, and the writers' one
    assert [p.name for p in (home / "spool").iterdir() if p.name not in locks] == []


def test_with_several_workers_the_loader_refreshes_the_drift_gauges(
    trained_settings: Settings,
) -> None:
    # A refresh is seconds of statistics under one interpreter's GIL: in a worker it stalled
    # that worker's requests. With a spool and several workers the loader process runs it.
    home = trained_settings.home_dir
    server = ServerProcess(home, workers=2, env={"PETALOPS_MONITOR__GAUGE_SECONDS": "0.5"})
    try:
        server.wait_until("/readyz")
        for _ in range(60):
            assert httpx.post(server.url + "/predict", json={"features": ROW}).status_code == 200
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline and "petalops_drift_score{" not in text:
            time.sleep(0.2)
            text = httpx.get(server.url + "/metrics").text
        assert "petalops_drift_score{" in text
        [directory] = (home / "serve").glob("prometheus-*")
        writers = {
            int(p.stem.rsplit("_", 1)[1])
            for p in directory.glob("gauge_mostrecent_*")
            if b"petalops_drift_score" in p.read_bytes()  # labelled: only written when set
        }
        assert writers == {server.loader_pid()}  # the loader alone: no worker computes them
    finally:
        server.stop()
