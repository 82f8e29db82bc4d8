"""Bad input on every route: a JSON 4xx naming the field with a valid example, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

ROW = [5.1, 3.5, 1.4, 0.2]
RECORD = dict(zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], ROW, strict=True))


def _tensor(data: Any, shape: Any = (1, 4), datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": list(shape), "datatype": datatype, "data": data}]}


# (route, body, field the error must name)
CASES: list[tuple[str, Any, str]] = [
    ("/predict", {"features": [5.1, 3.5, 1.4]}, "features"),
    ("/predict", {"features": [5.1, "a", 1.4, 0.2]}, "features[1]"),
    ("/predict", {"features": [5.1, None, 1.4, 0.2]}, "features[1]"),
    ("/predict", {"features": [5.1, True, 1.4, 0.2]}, "features[1]"),
    ("/predict", {"features": [[5.1, 3.5, 1.4, 0.2]]}, "features"),
    ("/predict", {"features": [5.1, [3.5], 1.4, 0.2]}, "features[1]"),
    ("/predict", {"features": None}, "features"),
    ("/predict", {"rows": ROW}, "features"),
    ("/predict", [ROW], "features"),
    ("/v1/predict", {**RECORD, "petal_width": "x"}, "petal_width"),
    ("/v1/predict", {k: v for k, v in RECORD.items() if k != "sepal_width"}, "sepal_width"),
    ("/v1/predict", {**RECORD, "colour": 1.0}, "colour"),
    ("/v1/predict", {"instances": []}, "instances"),
    (
        "/v1/predict",
        {"instances": [RECORD, {**RECORD, "sepal_length": None}]},
        "instances[1].sepal_length",
    ),
    ("/v1/predict", {"instances": [RECORD] * 11}, "instances"),
    ("/v1/predict", {"instances": RECORD}, "instances"),
    (
        "/invocations",
        {"dataframe_split": {"columns": ["a"], "data": [[1.0]]}},
        "dataframe_split.columns",
    ),
    ("/invocations", {"dataframe_split": {"data": [[1, 2, 3]]}}, "dataframe_split.data[0]"),
    (
        "/invocations",
        {"dataframe_records": [{"sepal_length": 1}]},
        "dataframe_records[0].sepal_width",
    ),
    ("/invocations", {"instances": [ROW], "inputs": [ROW]}, "body"),
    ("/invocations", {"something": [ROW]}, "body"),
    ("/invocations", {"instances": []}, "instances"),
    ("/invocations", {"inputs": {"sepal_length": [1.0]}}, "inputs.sepal_width"),
    ("/v1/models/iris:predict", {"instances": [[1, 2]]}, "instances[0]"),
    ("/v1/models/iris:predict", {"rows": [ROW]}, "instances"),
    ("/v2/models/iris/infer", _tensor(ROW, datatype="INT8"), "inputs[0].datatype"),
    ("/v2/models/iris/infer", _tensor(ROW, shape=(1, 3)), "inputs[0].shape"),
    ("/v2/models/iris/infer", _tensor([*ROW, 1.0], shape=(1, 4)), "inputs[0].data"),
    ("/v2/models/iris/infer", _tensor([5.1, None, 1.4, 0.2]), "inputs[0].data[1]"),
    ("/v2/models/iris/infer", _tensor([], shape=(0, 4)), "inputs[0].shape[0]"),
    ("/v2/models/iris/infer", {"inputs": []}, "inputs"),
    ("/v2/models/iris/infer", {**_tensor(ROW), "outputs": [{"name": "nope"}]}, "outputs[0].name"),
]


@pytest.mark.parametrize(("route", "body", "field"), CASES)
def test_bad_input_names_the_field(client: TestClient, route: str, body: Any, field: str) -> None:
    response = client.post(route, json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["field"] == field
    assert error["error"]
    assert "example" in error
    assert "Traceback" not in response.text


HOT = [
    "/predict",
    "/v1/predict",
    "/invocations",
    "/v1/models/iris:predict",
    "/v2/models/iris/infer",
]


@pytest.mark.parametrize("route", HOT)
def test_malformed_json_is_400(client: TestClient, route: str) -> None:
    response = client.post(
        route, content=b'{"features": [1, 2,', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["field"] == "body"


@pytest.mark.parametrize("route", HOT)
def test_nan_literal_and_empty_body_are_400(client: TestClient, route: str) -> None:
    for body in (b'{"features": [NaN, 1, 2, 3]}', b"", b"[1e999]"):
        response = client.post(route, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, (body, response.text)


@pytest.mark.parametrize("route", HOT)
def test_wrong_content_type_is_415(client: TestClient, route: str) -> None:
    response = client.post(
        route, content=b"features=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 415
    assert response.json()["field"] == "Content-Type"


@pytest.mark.parametrize("route", HOT)
def test_body_over_the_limit_is_413(client: TestClient, route: str) -> None:
    big = b'{"instances": [' + b"[1.0, 2.0, 3.0, 4.0]," * 60_000 + b"[1.0, 2.0, 3.0, 4.0]]}"
    response = client.post(route, content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "max_body_bytes" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "route"),
    [
        ("GET", "/predict"),
        ("PUT", "/v1/predict"),
        ("DELETE", "/invocations"),
        ("GET", "/v2/models/iris/infer"),
        ("POST", "/healthz"),
    ],
)
def test_wrong_method_is_405(client: TestClient, method: str, route: str) -> None:
    response = client.request(method, route)
    assert response.status_code == 405
    assert "allow" in response.headers
    assert response.json()["error"].startswith(f"method {method}")


def test_unknown_path_is_json_404(client: TestClient) -> None:
    response = client.get("/nothing/here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert "/docs" in response.json()["error"]


def test_unknown_model_is_404(client: TestClient) -> None:
    assert client.post("/v2/models/rose/infer", json=_tensor(ROW)).status_code == 404
    assert client.get("/v1/models/rose").status_code == 404


def test_batch_limit_comes_from_settings(client: TestClient) -> None:
    limit = client.app.server.settings.serve.max_batch  # type: ignore[attr-defined]
    ok = client.post("/v1/models/iris:predict", json={"instances": [ROW] * limit})
    assert ok.status_code == 200
    assert len(ok.json()["predictions"]) == limit
    over = client.post("/v1/models/iris:predict", json={"instances": [ROW] * (limit + 1)})
    assert over.status_code == 400
    assert "serve.max_batch" in over.json()["error"]


def test_absurd_magnitudes_are_refused_not_scored(client: TestClient) -> None:
    response = client.post("/predict", json={"features": [1e300, 3.5, 1.4, 0.2]})
    assert response.status_code == 400
    assert response.json()["field"] == "features[0]"
    assert "1e12" in response.json()["error"]


@pytest.mark.parametrize("value", ["", "latest", "-1", "1234567890"])
def test_malformed_version_header_is_400(client: TestClient, value: str) -> None:
    response = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": value})
    assert response.status_code == 400
    assert response.json()["field"] == "X-Model-Version"
