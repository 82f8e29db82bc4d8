"""The tutorial API: ``POST /predict`` and ``GET /health``."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import ROW, VIRGINICA


def test_tutorial_predict_answers_an_int_class_and_the_version(client: TestClient) -> None:
    response = client.post("/predict", json={"features": ROW})
    assert response.status_code == 200
    body = response.json()
    assert body["prediction"] == 0
    assert type(body["prediction"]) is int
    assert body["flower_type"] == "setosa"
    assert body["model_version"] == "1"
    assert body["variant"] == "champion"
    assert abs(sum(body["probabilities"]) - 1.0) < 1e-9
    assert client.post("/predict", json={"features": VIRGINICA}).json()["prediction"] == 2


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


# (body, field the error must name)
BAD: list[tuple[Any, str]] = [
    ({"features": [5.1, 3.5, 1.4]}, "features"),
    ({"features": [5.1, "a", 1.4, 0.2]}, "features[1]"),
    ({"features": [5.1, None, 1.4, 0.2]}, "features[1]"),
    ({"features": [5.1, True, 1.4, 0.2]}, "features[1]"),
    ({"features": [[5.1, 3.5, 1.4, 0.2]]}, "features"),
    ({"features": [5.1, [3.5], 1.4, 0.2]}, "features[1]"),
    ({"features": None}, "features"),
    ({"rows": ROW}, "features"),
    ([ROW], "features"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_input_names_the_field(client: TestClient, body: Any, field: str) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["field"] == field
    assert error["error"]
    assert error["example"] == {"features": ROW}
    assert "Traceback" not in response.text


def test_absurd_magnitudes_are_refused_not_scored(client: TestClient) -> None:
    response = client.post("/predict", json={"features": [1e300, 3.5, 1.4, 0.2]})
    assert response.status_code == 400
    assert response.json()["field"] == "features[0]"
    assert "1e12" in response.json()["error"]
