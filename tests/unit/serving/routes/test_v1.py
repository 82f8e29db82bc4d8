"""The petalops API: ``POST /v1/predict`` with named features, one row or a batch."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import RECORD, VIRGINICA


def test_v1_predict_single_and_batch(client: TestClient) -> None:
    single = client.post("/v1/predict", json=RECORD, headers={"X-Request-ID": "req-1"})
    assert single.status_code == 200
    assert single.headers["x-request-id"] == "req-1"
    body = single.json()
    assert body["class_name"] == "setosa"
    assert set(body["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert body["request_id"] == "req-1"
    assert body["model_version"] == "1"
    other = dict(zip(RECORD, VIRGINICA, strict=True))
    batch = client.post("/v1/predict", json={"instances": [RECORD, other]}).json()
    assert [p["prediction"] for p in batch["predictions"]] == [0, 2]
    assert batch["variant"] == "champion"


# (body, field the error must name)
BAD: list[tuple[Any, str]] = [
    ({**RECORD, "petal_width": "x"}, "petal_width"),
    ({k: v for k, v in RECORD.items() if k != "sepal_width"}, "sepal_width"),
    ({**RECORD, "colour": 1.0}, "colour"),
    ({"instances": []}, "instances"),
    ({"instances": [RECORD, {**RECORD, "sepal_length": None}]}, "instances[1].sepal_length"),
    ({"instances": [RECORD] * 11}, "instances"),
    ({"instances": RECORD}, "instances"),
    ({"instances": [RECORD], "extra": 1}, "extra"),
    ([RECORD], "body"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_input_names_the_field(client: TestClient, body: Any, field: str) -> None:
    response = client.post("/v1/predict", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["field"] == field
    assert error["error"]
    assert "example" in error
    assert "Traceback" not in response.text
