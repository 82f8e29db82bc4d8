"""The Open Inference Protocol v2: health, metadata and ``POST .../infer``."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient
from tests.utils.serving import ROW, VIRGINICA


def _tensor(data: Any, shape: Any = (1, 4), datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": list(shape), "datatype": datatype, "data": data}]}


def test_oip_health(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


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


BAD: list[tuple[Any, str]] = [
    (_tensor(ROW, datatype="INT8"), "inputs[0].datatype"),
    (_tensor(ROW, shape=(1, 3)), "inputs[0].shape"),
    (_tensor([*ROW, 1.0], shape=(1, 4)), "inputs[0].data"),
    (_tensor([5.1, None, 1.4, 0.2]), "inputs[0].data[1]"),
    (_tensor([], shape=(0, 4)), "inputs[0].shape[0]"),
    (_tensor(ROW, shape=(-1, 4)), "inputs[0].shape"),
    (_tensor(ROW, shape=(True, 4)), "inputs[0].shape"),
    (_tensor(ROW, shape=("1", 4)), "inputs[0].shape"),
    (_tensor(ROW, shape=(1, 4.0)), "inputs[0].shape"),
    (_tensor(ROW, shape=(1, 1, 4)), "inputs[0].shape"),
    (_tensor(ROW, shape=()), "inputs[0].shape"),
    (_tensor(ROW, shape=(2, 4)), "inputs[0].data"),
    ({"inputs": []}, "inputs"),
    ({**_tensor(ROW), "outputs": [{"name": "nope"}]}, "outputs[0].name"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
def test_bad_input_names_the_field(client: TestClient, body: Any, field: str) -> None:
    response = client.post("/v2/models/iris/infer", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()
    assert error["field"] == field
    assert error["error"]
    assert "example" in error
    assert "Traceback" not in response.text


def test_a_one_dimensional_shape_is_one_row(client: TestClient) -> None:
    response = client.post("/v2/models/iris/infer", json=_tensor(ROW, shape=(4,)))
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    assert outputs["label"]["data"] == [0]
    assert outputs["probabilities"]["shape"] == [1, 3]
    assert len(outputs["probabilities"]["data"]) == 3
