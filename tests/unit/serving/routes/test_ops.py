"""Liveness, readiness and the Prometheus scrape."""

from __future__ import annotations

from starlette.testclient import TestClient

from petalops.serving.holder import Snapshot


def test_liveness_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == "1"


def test_not_ready_names_the_last_error(client: TestClient) -> None:
    holder = client.app.server.holder  # type: ignore[attr-defined]
    holder.snapshot = Snapshot()
    holder.last_error = "resolve: registry at http://x is unreachable"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "ready": False,
        "model_version": None,
        "error": "resolve: registry at http://x is unreachable",
    }


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE petalops_requests" in response.text
