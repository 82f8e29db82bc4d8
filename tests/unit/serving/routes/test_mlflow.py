"""The MLflow scoring protocol: ``POST /invocations``, ``GET /ping``, ``GET /version``."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import RECORD, ROW, VIRGINICA


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        ({"dataframe_split": {"columns": list(RECORD), "data": [ROW, VIRGINICA]}}, None),
        # Columns in another order, plus an extra column MLflow would ignore.
        (
            {
                "dataframe_split": {
                    "columns": ["petal_width", "extra", *list(RECORD)[:3]],
                    "data": [[0.2, 9, 5.1, 3.5, 1.4], [2.3, 9, 6.7, 3.0, 5.2]],
                }
            },
            None,
        ),
        ({"dataframe_split": {"data": [ROW, VIRGINICA]}}, None),
        ({"dataframe_records": [RECORD, dict(zip(RECORD, VIRGINICA, strict=True))]}, None),
        ({"instances": [ROW, VIRGINICA]}, None),
        ({"inputs": [ROW, VIRGINICA]}, None),
        ({"inputs": {k: [a, b] for k, a, b in zip(RECORD, ROW, VIRGINICA, strict=True)}}, None),
        (
            "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n",
            "text/csv",
        ),
    ],
)
def test_mlflow_invocations_formats(
    client: TestClient, payload: object, content_type: str | None
) -> None:
    if content_type:
        response = client.post(
            "/invocations", content=str(payload), headers={"Content-Type": content_type}
        )
    else:
        response = client.post("/invocations", json=payload)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": [0, 2]}
    assert response.headers["x-model-version"] == "1"


def test_ping(client: TestClient) -> None:
    assert client.get("/ping").status_code == 200


def test_mlflow_version(client: TestClient) -> None:
    body = client.get("/version").json()
    assert body["model"] == "iris"
    assert body["model_version"] == "1"


BAD: list[tuple[Any, str]] = [
    ({"dataframe_split": {"columns": ["a"], "data": [[1.0]]}}, "dataframe_split.columns"),
    ({"dataframe_split": {"data": [[1, 2, 3]]}}, "dataframe_split.data[0]"),
    ({"dataframe_records": [{"sepal_length": 1}]}, "dataframe_records[0].sepal_width"),
    ({"instances": [ROW], "inputs": [ROW]}, "body"),
    ({"something": [ROW]}, "body"),
    ({"instances": []}, "instances"),
    ({"inputs": {"sepal_length": [1.0]}}, "inputs.sepal_width"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_input_names_the_field(client: TestClient, body: Any, field: str) -> None:
    response = client.post("/invocations", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["field"] == field
    assert error["error"]
    assert "example" in error
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    ("csv", "field", "says"),
    [
        ("sepal_length,sepal_width\n5.1,3.5\n", "header", "'petal_length' is missing"),
        ("sepal_length,sepal_width,petal_length,petal_width\n", "body", "at least one data row"),
        (
            "sepal_length,sepal_width,petal_length,petal_width\n5.1,x,1.4,0.2\n",
            "sepal_width",
            "line 2",
        ),
    ],
)
def test_bad_csv_names_the_problem(client: TestClient, csv: str, field: str, says: str) -> None:
    response = client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert says in response.json()["error"]
    assert response.json()["example"].startswith("sepal_length,sepal_width,")
