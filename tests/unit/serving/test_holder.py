"""Reconciliation: load, verify, warm, swap atomically, keep the last good model on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient
from tests.utils.serving import BundleSource

from petalops.config import Settings
from petalops.errors import NotFoundError, RegistryUnavailableError
from petalops.rollout.routing import TrafficPolicy
from petalops.serving.app import create_app
from petalops.serving.holder import Snapshot

ROW = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
AUTH = {"Authorization": "Bearer s3cret"}


def _errors(reason: str) -> float:
    value = REGISTRY.get_sample_value("petalops_reconcile_errors_total", {"reason": reason})
    return value or 0.0


def test_not_ready_until_a_model_is_loaded(client: TestClient, source: BundleSource) -> None:
    holder = client.app.server.holder  # type: ignore[attr-defined]
    holder.snapshot = Snapshot()
    assert client.get("/readyz").status_code == 503
    response = client.post("/predict", json={"features": ROW})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert client.get("/v2/health/ready").status_code == 503
    assert client.post("/admin/reload", headers=AUTH).json()["ready"] is True
    assert client.get("/readyz").status_code == 200


def test_reload_swaps_to_the_new_champion(client: TestClient, source: BundleSource) -> None:
    assert client.post("/predict", json={"features": ROW}).json()["model_version"] == "1"
    source.aliases = {"champion": "2", "previous": "1"}
    status = client.post("/admin/reload", headers=AUTH).json()
    assert status["serving"]["champion"] == "2"
    assert status["serving"]["previous"] == "1"
    assert client.post("/predict", json={"features": ROW}).json()["model_version"] == "2"
    # Version 1 was already loaded: it is reused as `previous`, not loaded again.
    assert source.loads.count("1") == 1


def test_failure_keeps_the_last_good_model(
    client: TestClient, source: BundleSource, log_path: Path
) -> None:
    before = _errors("integrity")
    directory, _ = source.bundles["2"]
    (directory / "linear.json").write_text('{"weights": [[0, 0, 0]], "bias": [0, 0, 0]}')
    source.aliases = {"champion": "2"}
    status = client.post("/admin/reload", headers=AUTH).json()
    assert status["serving"]["champion"] == "1"
    assert "checksum mismatch" in status["last_error"]
    assert _errors("integrity") == before + 1
    assert client.get("/readyz").status_code == 200
    assert client.post("/predict", json={"features": ROW}).json()["model_version"] == "1"
    client.app.server.log.flush()  # type: ignore[attr-defined]
    events = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert any(e["event"] == "reconcile_error" and e["reason"] == "integrity" for e in events)


def test_registry_unreachable_keeps_serving(client: TestClient, source: BundleSource) -> None:
    before = _errors("registry_unavailable")
    source.fail = RegistryUnavailableError("registry at http://x is unreachable")
    status = client.post("/admin/reload", headers=AUTH).json()
    assert status["ready"] is True
    assert "unreachable" in status["last_error"]
    assert _errors("registry_unavailable") == before + 1
    assert client.post("/predict", json={"features": ROW}).status_code == 200


def test_canary_routes_by_key_and_sticks(client: TestClient, source: BundleSource) -> None:
    source.aliases = {"champion": "1", "challenger": "2"}
    source.policy = TrafficPolicy(strategy="canary", weight=50, rollout_id="r1")
    client.post("/admin/reload", headers=AUTH)
    seen = {}
    for i in range(40):
        key = f"user-{i}"
        answers = {
            client.post("/predict", json={"features": ROW}, headers={"X-Petalops-Key": key}).json()[
                "variant"
            ]
            for _ in range(3)
        }
        assert len(answers) == 1  # a caller sticks to one variant
        seen[key] = answers.pop()
    assert set(seen.values()) == {"champion", "challenger"}
    answer = client.post(
        "/v1/predict",
        json=dict(
            zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], ROW, strict=True)
        ),
        headers={"X-Petalops-Key": next(k for k, v in seen.items() if v == "challenger")},
    )
    assert answer.json()["variant"] == "challenger"
    assert answer.json()["model_version"] == "2"


def test_challenger_that_fails_to_load_gets_no_traffic(
    client: TestClient, source: BundleSource
) -> None:
    directory, _ = source.bundles["2"]
    (directory / "manifest.json").write_text("{}")
    source.aliases = {"champion": "1", "challenger": "2"}
    source.policy = TrafficPolicy(strategy="canary", weight=100)
    status = client.post("/admin/reload", headers=AUTH).json()
    assert status["serving"]["champion"] == "1"
    assert "challenger" not in status["serving"]
    assert client.post("/predict", json={"features": ROW}).json()["variant"] == "champion"


def test_shadow_answers_with_the_champion(client: TestClient, source: BundleSource) -> None:
    source.aliases = {"champion": "1", "challenger": "2"}
    source.policy = TrafficPolicy(strategy="shadow")
    client.post("/admin/reload", headers=AUTH)
    labels = {"model_version": "2", "variant": "shadow", "class_name": "setosa"}
    before = REGISTRY.get_sample_value("petalops_predictions_total", labels) or 0.0
    body = client.post("/predict", json={"features": ROW}).json()
    assert (body["model_version"], body["variant"]) == ("1", "champion")
    client.app.server.metrics.flush()  # type: ignore[attr-defined]
    assert REGISTRY.get_sample_value("petalops_predictions_total", labels) == before + 1


def test_requests_during_a_swap_see_one_version(client: TestClient, source: BundleSource) -> None:
    """A request keeps the snapshot it started with, even if a swap lands mid-request."""
    server = client.app.server  # type: ignore[attr-defined]
    first = server.holder.snapshot
    source.aliases = {"champion": "2"}
    client.post("/admin/reload", headers=AUTH)
    assert server.holder.snapshot is not first
    assert first.champion.version == "1"
    assert server.holder.snapshot.champion.version == "2"


def test_a_version_that_fails_its_checks_is_409_and_not_pinned(
    client: TestClient, source: BundleSource
) -> None:
    directory, _ = source.bundles["2"]
    (directory / "linear.json").write_text('{"weights": [[0, 0, 0]], "bias": [0, 0, 0]}')
    response = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "2"})
    assert response.status_code == 409
    assert response.json()["error"].startswith("version 2 cannot be served: ")
    assert "checksum mismatch" in response.json()["error"]
    assert "2" not in client.app.server.holder._pinned  # type: ignore[attr-defined]


def test_an_unreachable_registry_on_a_version_is_503(
    client: TestClient, source: BundleSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(version: str) -> None:
        raise RegistryUnavailableError("registry at http://x is unreachable")

    monkeypatch.setattr(source, "resolve_version", unreachable)
    response = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "3"})
    assert response.status_code == 503
    assert response.json()["error"] == "registry at http://x is unreachable"


def test_a_non_linear_model_serves_through_onnx_runtime(client: TestClient) -> None:
    headers = {"X-Model-Version": "3"}
    tutorial = client.post("/predict", json={"features": VIRGINICA}, headers=headers).json()
    assert (tutorial["prediction"], tutorial["model_version"]) == (2, "3")
    batch = client.post(
        "/v1/models/iris:predict", json={"instances": [ROW, VIRGINICA] * 5}, headers=headers
    )
    assert batch.json()["predictions"] == [0, 2] * 5
    tensor = {
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": [*ROW, *VIRGINICA]}]
    }
    infer = client.post("/v2/models/iris/versions/3/infer", json=tensor).json()
    assert infer["outputs"][0]["data"] == [0, 2]
    runtime = client.app.server.holder._pinned["3"].runtime  # type: ignore[attr-defined]
    assert type(runtime).__name__ == "OnnxRuntime"


def test_a_worker_starting_during_an_outage_serves_the_last_known_good(
    settings: Settings, source: BundleSource
) -> None:
    source.known = ["2"]  # what this home served before, verified
    source.fail = RegistryUnavailableError("registry at http://x is unreachable")
    app = create_app(settings, source=source, open_sink=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 200
        status = client.get("/admin/status", headers=AUTH).json()
        assert status["origin"] == "last_known_good" and status["serving"]["champion"] == "2"
        assert client.post("/predict", json={"features": ROW}).json()["model_version"] == "2"
        source.fail = None  # the registry is back: it decides again
        status = client.post("/admin/reload", headers=AUTH).json()
        assert status["origin"] == "registry" and status["serving"]["champion"] == "1"
        assert status["last_error"] is None
        assert source.known == ["1", "2"]  # the registry's champion is recorded


def test_a_last_known_good_that_no_longer_verifies_is_skipped(
    settings: Settings, source: BundleSource
) -> None:
    (source.bundles["2"][0] / "linear.json").write_text("{}")
    source.known = ["2", "1"]
    source.fail = RegistryUnavailableError("registry at http://x is unreachable")
    app = create_app(settings, source=source, open_sink=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        status = client.get("/admin/status", headers=AUTH).json()
        assert status["serving"]["champion"] == "1" and status["origin"] == "last_known_good"


def test_no_fallback_when_the_registry_answers(settings: Settings, source: BundleSource) -> None:
    source.known = ["2"]
    source.fail = NotFoundError("model 'iris' has no alias 'champion'")
    app = create_app(settings, source=source, open_sink=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/readyz").status_code == 503


def test_only_aliased_or_allowed_versions_can_be_pinned(
    client: TestClient, source: BundleSource
) -> None:
    source.allow_pin = False
    source.aliases = {"champion": "1", "previous": "2"}
    refused = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "3"})
    assert refused.status_code == 403
    assert "petalops.allow_pin" in refused.json()["error"]
    assert refused.json()["field"] == "X-Model-Version"
    assert "3" not in source.loads
    aliased = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "2"})
    assert aliased.status_code == 200 and aliased.json()["model_version"] == "2"
