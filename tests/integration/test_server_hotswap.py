"""Hot swap on a real server under bounded load: zero failed requests, every response names
the version that answered; corrupt artifacts and an unreachable registry keep the last good
model serving."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.utils.server_process import ServerProcess

from petalops.config import Settings
from petalops.registry import fetch_bundle, resolve
from petalops.registry.store import delete_alias, set_alias

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROW = [5.1, 3.5, 1.4, 0.2]


def _reconcile_errors(url: str) -> float:
    text = httpx.get(url + "/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "petalops_reconcile_errors_total"
    )


def test_champion_moves_under_load_with_zero_failures(trained_settings: Settings) -> None:
    server = ServerProcess(trained_settings.home_dir, workers=2)
    results: list[tuple[float, int, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post("/predict", json={"features": ROW})
                    results.append(
                        (sent, response.status_code, response.json().get("model_version", ""))
                    )
                except (httpx.HTTPError, ValueError) as exc:
                    failures.append(repr(exc))

    try:
        server.wait_until("/readyz")
        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        set_alias(trained_settings, "champion", "2")
        set_alias(trained_settings, "previous", "1")
        status = server.admin("/admin/reload").json()
        reloaded = time.monotonic()
        assert status["serving"]["champion"] == "2", status
        time.sleep(3.0)  # the other worker follows within its 0.25 s trigger poll
        stop.set()
        for thread in threads:
            thread.join(15)
    finally:
        stop.set()
        server.stop()
    assert failures == []
    assert results and {status for _, status, _ in results} == {200}
    versions = [version for _, _, version in results]
    assert set(versions) == {"1", "2"}
    settled = [version for sent, _, version in results if sent > reloaded + 1.5]
    assert settled and set(settled) == {"2"}
    swaps = [
        e
        for e in server.events()
        if e["event"] == "model_swapped" and e["after"].get("champion") == "2"
    ]
    assert len({e["pid"] for e in swaps}) == 2  # both workers swapped


def test_corrupt_artifact_is_refused_then_refetched(trained_settings: Settings) -> None:
    # Version 2 is loaded first when it becomes champion, from a damaged local copy (what a
    # corrupted download or disk looks like).
    delete_alias(trained_settings, "challenger")
    cached = fetch_bundle(trained_settings, resolve(trained_settings, "iris/2"))
    (cached / "linear.json").write_text('{"weights": [[1, 0, 0]], "bias": [0, 0, 0]}')
    server = ServerProcess(trained_settings.home_dir, workers=1)
    try:
        server.wait_until("/readyz")
        set_alias(trained_settings, "champion", "2")
        status = server.admin("/admin/reload").json()
        assert status["serving"]["champion"] == "1"
        assert "checksum mismatch" in status["last_error"]
        assert httpx.get(server.url + "/readyz").status_code == 200
        assert _reconcile_errors(server.url) >= 1
        assert any(
            e["event"] == "reconcile_error" and e["reason"] == "integrity" for e in server.events()
        )
        # The damaged copy was dropped; the next reconciliation fetches a good one.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if server.admin("/admin/reload").json()["serving"]["champion"] == "2":
                break
            time.sleep(0.5)
        answer = httpx.post(server.url + "/predict", json={"features": ROW}).json()
        assert answer["model_version"] == "2"
    finally:
        server.stop()


def test_registry_unreachable_keeps_serving(trained_settings: Settings) -> None:
    server = ServerProcess(trained_settings.home_dir, workers=1)
    database = trained_settings.home_dir / "mlflow.db"
    moved = database.with_suffix(".away")
    try:
        server.wait_until("/readyz")
        database.rename(moved)
        status = server.admin("/admin/reload").json()
        assert status["ready"] is True
        assert status["last_error"]
        assert httpx.get(server.url + "/readyz").status_code == 200
        assert httpx.post(server.url + "/predict", json={"features": ROW}).status_code == 200
        assert _reconcile_errors(server.url) >= 1
        moved.rename(database)
        assert server.admin("/admin/reload").json()["last_error"] is None
    finally:
        if moved.exists():
            moved.rename(database)
        server.stop()
