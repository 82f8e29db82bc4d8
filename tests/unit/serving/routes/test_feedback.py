"""``POST /v1/feedback`` on a server without the prediction log (with it: the integration
test tests/integration/test_server_feedback.py)."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.utils.serving import BundleSource, ListSink

from petalops.config import Settings
from petalops.serving.app import create_app


def test_feedback_without_the_prediction_log_is_409(client: TestClient) -> None:
    response = client.post("/v1/feedback", json={"request_id": "r-1", "label": "setosa"})
    assert response.status_code == 409
    assert "serve.log_predictions=true" in response.json()["error"]
    assert response.json()["field"] == "body"


def test_feedback_with_a_sink_but_no_store_is_409(client: TestClient) -> None:
    client.app.server.side.sink = ListSink()  # type: ignore[attr-defined]
    response = client.post("/v1/feedback", json={"request_id": "r-1", "label": "setosa"})
    assert response.status_code == 409


def test_feedback_body_must_be_json(client: TestClient) -> None:
    response = client.post(
        "/v1/feedback", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["example"] == {"request_id": "0b8e6c1e-3f", "label": "setosa"}


def test_with_a_feedback_token_feedback_needs_it(settings: Settings, source: BundleSource) -> None:
    guarded = settings.model_copy(
        update={"serve": settings.serve.model_copy(update={"feedback_token": "fb-secret"})}
    )
    body = {"request_id": "r-1", "label": "setosa"}
    with TestClient(create_app(guarded, source=source, open_sink=False)) as client:
        missing = client.post("/v1/feedback", json=body)
        assert missing.status_code == 401 and "serve.feedback_token" in missing.json()["error"]
        wrong = client.post("/v1/feedback", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        # Past the token: this app has no prediction log, so the next answer is its 409.
        for token in ("fb-secret", "s3cret"):  # the feedback token, or the admin token
            ok = client.post(
                "/v1/feedback", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert ok.status_code == 409, ok.text
