"""/openapi.json is the contract the codecs really keep: every route is documented, each
documented example is accepted and answered as documented, and the row bounds are the ones
`petalops.serving.rows` enforces."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from starlette.testclient import TestClient

from petalops.serving.app import PetalopsApp
from petalops.serving.http import HttpError
from petalops.serving.rows import MAX_ABS, check_number


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    result: dict[str, Any] = client.get("/openapi.json").json()
    return result


def _valid(document: dict[str, Any], schema: dict[str, Any], value: Any) -> None:
    root = {**schema, "components": document["components"]}
    jsonschema.Draft202012Validator(root).validate(value)


def _concrete(path: str) -> str:
    return path.replace("{name}", "iris").replace("{version}", "1")


def test_openapi_describes_every_route(client: TestClient, document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path in [
        "/predict",
        "/health",
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/predict",
        "/invocations",
        "/ping",
        "/version",
        "/v1/models/{name}",
        "/v1/models/{name}:predict",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
        "/admin/reload",
        "/admin/status",
    ]:
        assert path in paths, path
    predict = paths["/predict"]["post"]
    schema_ref = predict["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert schema["properties"]["features"]["minItems"] == 4
    assert "text/csv" in paths["/invocations"]["post"]["requestBody"]["content"]
    assert client.get("/docs").status_code == 200


def test_every_hot_route_is_in_the_document(app: PetalopsApp, document: dict[str, Any]) -> None:
    for route in app.router.routes:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["summary"] == route.summary
        assert operation["description"] == route.description
        assert operation["description"], f"{route.method} {route.path} has no docstring"


def test_each_documented_example_is_answered_as_documented(
    app: PetalopsApp, client: TestClient, document: dict[str, Any]
) -> None:
    for route in app.router.routes:
        operation = document["paths"][route.path][route.method.lower()]
        if route.method == "POST":
            content = operation["requestBody"]["content"]["application/json"]
            _valid(document, content["schema"], content["example"])
            if route.codec is None:
                continue  # feedback: answered in tests/integration/test_server_feedback.py
            response = client.post(_concrete(route.path), json=content["example"])
        else:
            response = client.get(_concrete(route.path))
        assert str(response.status_code) in operation["responses"], (route.path, response.text)
        documented = operation["responses"][str(response.status_code)].get("content", {})
        if "application/json" in documented:
            _valid(document, documented["application/json"]["schema"], response.json())
        else:
            assert response.headers["content-type"].startswith("text/plain"), route.path


def test_error_answers_are_the_documented_error_body(
    app: PetalopsApp, client: TestClient, document: dict[str, Any]
) -> None:
    for route in app.router.routes:
        if route.codec is None:
            continue
        response = client.post(_concrete(route.path), json={"wrong": True})
        assert response.status_code == 400, route.path
        schema = document["paths"][route.path]["post"]["responses"]["400"]["content"]
        _valid(document, schema["application/json"]["schema"], response.json())


def test_the_documented_bounds_are_the_checked_ones(document: dict[str, Any]) -> None:
    record = document["components"]["schemas"]["FeatureRecord"]
    bounds = record["properties"]["sepal_length"]
    assert (bounds["minimum"], bounds["maximum"]) == (-MAX_ABS, MAX_ABS)
    assert record["additionalProperties"] is False
    assert check_number(MAX_ABS, "x", None) == MAX_ABS
    with pytest.raises(HttpError):
        check_number(MAX_ABS * 1.000001, "x", None)
