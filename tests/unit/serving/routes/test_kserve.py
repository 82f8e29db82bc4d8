"""KServe v1: ``GET /v1/models``, ``GET /v1/models/{name}``, ``POST .../{name}:predict``."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import ROW, VIRGINICA


def test_kserve_v1(client: TestClient) -> None:
    assert client.get("/v1/models").json() == {"models": ["iris"]}
    assert client.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
    response = client.post("/v1/models/iris:predict", json={"instances": [ROW, VIRGINICA]})
    assert response.json() == {"predictions": [0, 2]}
    assert response.headers["x-model-version"] == "1"  # the body has no room for it
    assert client.post("/v1/models/rose:predict", json={"instances": [ROW]}).status_code == 404


BAD: list[tuple[Any, str]] = [
    ({"instances": [[1, 2]]}, "instances[0]"),
    ({"rows": [ROW]}, "instances"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_input_names_the_field(client: TestClient, body: Any, field: str) -> None:
    response = client.post("/v1/models/iris:predict", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["field"] == field
    assert error["error"]
    assert "example" in error
    assert "Traceback" not in response.text


def test_batch_limit_comes_from_settings(client: TestClient) -> None:
    limit = client.app.server.settings.serve.max_batch  # type: ignore[attr-defined]
    ok = client.post("/v1/models/iris:predict", json={"instances": [ROW] * limit})
    assert ok.status_code == 200
    assert len(ok.json()["predictions"]) == limit
    over = client.post("/v1/models/iris:predict", json={"instances": [ROW] * (limit + 1)})
    assert over.status_code == 400
    assert "serve.max_batch" in over.json()["error"]
