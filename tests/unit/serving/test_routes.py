"""Every protocol route answers as documented, through the real app and real models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

ROW = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
RECORD = dict(zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], ROW, strict=True))


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


def test_health_routes(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["model_version"] == "1"
    assert client.get("/ping").status_code == 200
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


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


def test_mlflow_version(client: TestClient) -> None:
    body = client.get("/version").json()
    assert body["model"] == "iris"
    assert body["model_version"] == "1"


def test_kserve_v1(client: TestClient) -> None:
    assert client.get("/v1/models").json() == {"models": ["iris"]}
    assert client.get("/v1/models/iris").json() == {"name": "iris", "ready": True}
    response = client.post("/v1/models/iris:predict", json={"instances": [ROW, VIRGINICA]})
    assert response.json() == {"predictions": [0, 2]}
    assert response.headers["x-model-version"] == "1"  # the body has no room for it
    assert client.post("/v1/models/rose:predict", json={"instances": [ROW]}).status_code == 404


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
@pytest.mark.parametrize("nested", [False, True])
def test_oip_v2_infer(client: TestClient, datatype: str, nested: bool) -> None:
    data = [ROW, VIRGINICA] if nested else [*ROW, *VIRGINICA]
    request = {
        "id": "abc",
        "inputs": [{"name": "input-0", "shape": [2, 4], "datatype": datatype, "data": data}],
    }
    response = client.post("/v2/models/iris/infer", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "iris"
    assert body["model_version"] == "1"
    assert body["id"] == "abc"
    outputs = {o["name"]: o for o in body["outputs"]}
    assert outputs["label"] == {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]}
    assert outputs["probabilities"]["datatype"] == datatype
    assert outputs["probabilities"]["shape"] == [2, 3]
    assert len(outputs["probabilities"]["data"]) == 6
    assert outputs["class_name"]["data"] == ["setosa", "virginica"]


def test_oip_v2_binary_tensor_extension(client: TestClient) -> None:
    import numpy as np

    raw = np.asarray([ROW, VIRGINICA], dtype="<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "label"}],
        }
    ).encode()
    response = client.post(
        "/v2/models/iris/infer",
        content=header + raw,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]}
    ]


def test_oip_v2_metadata_and_readiness(client: TestClient) -> None:
    assert client.get("/v2").json()["name"] == "petalops"
    meta = client.get("/v2/models/iris").json()
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert client.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert client.get("/v2/models/iris/versions/2/ready").status_code == 200
    assert client.get("/v2/models/iris/versions/7/ready").status_code == 404
    assert client.get("/v2/models/rose").status_code == 404


def test_any_version_can_be_addressed(client: TestClient) -> None:
    request = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    v2 = client.post("/v2/models/iris/versions/2/infer", json=request).json()
    assert v2["model_version"] == "2"
    by_header = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "2"})
    assert by_header.json()["model_version"] == "2"
    assert by_header.json()["variant"] == "pinned"
    unknown = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "42"})
    assert unknown.status_code == 404
    assert unknown.json()["field"] == "version"
    assert client.post("/v2/models/iris/versions/x1/infer", json=request).status_code == 404


def test_request_id_generated_and_unique(client: TestClient) -> None:
    first = client.post("/predict", json={"features": ROW}).headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    third = client.get("/docs").headers["x-request-id"]
    assert len({first, second, third}) == 3


def test_one_json_log_line_per_request(client: TestClient, log_path: Path) -> None:
    client.post("/predict", json={"features": ROW}, headers={"X-Request-ID": "log-me"})
    client.post("/predict", json={"features": [1]}, headers={"X-Request-ID": "log-bad"})
    client.app.server.log.flush()  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    requests = {r["request_id"]: r for r in lines if r["event"] == "request"}
    assert requests["log-me"]["status"] == 200
    assert requests["log-me"]["route"] == "/predict"
    assert requests["log-me"]["model_version"] == "1"
    assert requests["log-me"]["variant"] == "champion"
    assert requests["log-me"]["latency_ms"] >= 0
    assert requests["log-bad"]["status"] == 400


def test_openapi_describes_every_route(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
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
