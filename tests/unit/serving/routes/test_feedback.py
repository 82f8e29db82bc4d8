"""``POST /v1/feedback`` on a server without the prediction log (with it: the integration
test tests/integration/test_server_feedback.py)."""

from __future__ import annotations

from starlette.testclient import TestClient
from tests.utils.serving import ListSink


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
