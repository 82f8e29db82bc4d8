"""API keys on a real app's routes: which need a key, the answers, revocation, metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import BundleSource

from petalops.config import SecuritySettings, Settings
from petalops.security.audit import record
from petalops.security.keys import DatabaseKeys, new_key
from petalops.serving.app import create_app

ROW = {"features": [5.1, 3.5, 1.4, 0.2]}


@pytest.fixture
def keyed(settings: Settings) -> Iterator[tuple[Settings, dict[str, str], DatabaseKeys]]:
    settings = settings.model_copy(update={"reconcile_seconds": 0.2})
    store = DatabaseKeys(settings.monitor_url)
    made = {}
    for name, scope in (("shop", "predict"), ("ops", "admin")):
        key, stored = new_key(name, scope)
        store.add(stored)
        made[name] = key
    yield settings, made, store
    store.close()


@pytest.fixture
def guarded(
    keyed: tuple[Settings, dict[str, str], DatabaseKeys], source: BundleSource
) -> Iterator[TestClient]:
    app = create_app(keyed[0], source=source, open_sink=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        # The model and the keys load in the background (guarded routes answer 503 until
        # then): on a loaded box the first request can come before them.
        deadline = time.monotonic() + 30
        headers = {"X-API-Key": keyed[1]["shop"]}
        while client.post("/predict", json=ROW, headers=headers).status_code == 503:
            assert time.monotonic() < deadline, "the app never became ready"
            time.sleep(0.05)
        yield client


def test_prediction_routes_need_a_predict_key_and_operations_stay_open(
    guarded: TestClient, keyed: tuple[Settings, dict[str, str], DatabaseKeys]
) -> None:
    _, made, _ = keyed
    refused = guarded.post("/predict", json=ROW)
    assert refused.status_code == 401
    assert refused.json()["field"] == "Authorization"
    assert "Authorization: Bearer <key>" in refused.json()["error"]
    assert refused.headers["www-authenticate"] == "Bearer"
    for path in ("/predict", "/v1/models/iris:predict"):
        body = ROW if path == "/predict" else {"instances": [ROW["features"]]}
        ok = guarded.post(path, json=body, headers={"X-API-Key": made["shop"]})
        assert ok.status_code == 200, ok.text
    assert (
        guarded.post("/predict", json=ROW, headers={"Authorization": "Basic eA=="}).status_code
        == 401
    )
    for path in ("/healthz", "/readyz", "/metrics", "/v2/health/ready"):
        assert guarded.get(path).status_code == 200, path
    # An admin key goes everywhere; a predict key is not admin.
    assert guarded.post("/predict", json=ROW, headers={"X-API-Key": made["ops"]}).status_code == 200
    status = guarded.get("/admin/status", headers={"X-API-Key": made["shop"]})
    assert status.status_code == 403 and "'predict'" in status.json()["error"]
    assert guarded.get("/admin/status", headers={"X-API-Key": made["ops"]}).status_code == 200


def test_metrics_count_requests_per_key_name_never_the_key(
    guarded: TestClient, keyed: tuple[Settings, dict[str, str], DatabaseKeys]
) -> None:
    _, made, _ = keyed
    for _ in range(3):
        guarded.post("/predict", json=ROW, headers={"X-API-Key": made["shop"]})
    guarded.post("/predict", json=ROW, headers={"X-API-Key": "po_000000000000_nope"})
    text = guarded.get("/metrics").text
    assert 'petalops_api_key_requests_total{key="shop",outcome="allowed"}' in text
    assert 'petalops_auth_failures_total{reason="invalid",scope="predict"}' in text
    assert made["shop"] not in text and made["shop"].split("_", 2)[2] not in text


def test_a_revoked_key_stops_working_within_a_reconcile_interval(
    guarded: TestClient, keyed: tuple[Settings, dict[str, str], DatabaseKeys]
) -> None:
    settings, made, store = keyed
    headers = {"Authorization": f"Bearer {made['shop']}"}
    assert guarded.post("/predict", json=ROW, headers=headers).status_code == 200
    revoked_at = time.monotonic()
    store.revoke("shop", time.time())
    while guarded.post("/predict", json=ROW, headers=headers).status_code == 200:
        assert time.monotonic() - revoked_at < 10 * settings.reconcile_seconds, "still accepted"
        time.sleep(0.05)
    answer = guarded.post("/predict", json=ROW, headers=headers)
    assert answer.status_code == 401 and "revoked" in answer.json()["error"]


def test_metrics_behind_a_scope_by_config(
    keyed: tuple[Settings, dict[str, str], DatabaseKeys], source: BundleSource
) -> None:
    settings, made, _ = keyed
    settings = settings.model_copy(update={"security": SecuritySettings(metrics_scope="admin")})
    with TestClient(create_app(settings, source=source, open_sink=False)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": made["ops"]}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_the_audit_trail_is_an_admin_route(
    guarded: TestClient, keyed: tuple[Settings, dict[str, str], DatabaseKeys]
) -> None:
    settings, made, _ = keyed
    record(settings, "alias.set", "iris@champion", {"version": "1"}, {"version": "2"}, actor="ops")
    assert guarded.get("/admin/audit").status_code == 401
    answer = guarded.get("/admin/audit?action=alias", headers={"X-API-Key": made["ops"]})
    assert answer.status_code == 200
    [event] = answer.json()["events"]
    assert (event["actor"], event["before"], event["after"]) == (
        "ops",
        {"version": "1"},
        {"version": "2"},
    )
    assert (
        guarded.get("/admin/audit?limit=0", headers={"X-API-Key": made["ops"]}).status_code == 400
    )


def test_no_key_of_a_scope_leaves_it_open(guarded: TestClient, tmp_path: Path) -> None:
    # Keys exist (predict, admin) but none of scope feedback: feedback answers as before.
    answer = guarded.post("/v1/feedback", json={"request_id": "x", "label": "setosa"})
    assert answer.status_code == 409  # the prediction log is off here, not a key refusal


def test_control_room_actions_take_an_admin_key(
    guarded: TestClient, keyed: tuple[Settings, dict[str, str], DatabaseKeys]
) -> None:
    _, made, _ = keyed
    action = {"action": "promote"}
    refused = guarded.post("/ui/actions", json=action, headers={"X-API-Key": made["shop"]})
    assert refused.status_code == 403
    # Through the key check: refused further on (no registry here), not by the check.
    answer = guarded.post("/ui/actions", json=action, headers={"X-API-Key": made["ops"]})
    assert answer.status_code == 404 and answer.json().get("field") != "Authorization"
