"""The recipe "add a protocol" (docs/serving.md): one codec, defined in this module alone,
plugged into `create_app`, gets everything the shipped protocols get from the dispatcher:
metrics, the X-Model-Version header, the request log, the prediction log, the champion
answering for a failing challenger, JSON errors, and its own entry in /openapi.json."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY
from pydantic import create_model
from starlette.testclient import TestClient
from tests.utils.serving import FEATURES, ROW, VIRGINICA, BundleSource, ListSink, log_lines

from petalops.config import Settings
from petalops.rollout.routing import TrafficPolicy
from petalops.serving.app import create_app
from petalops.serving.codec import Codec, Route
from petalops.serving.holder import Served
from petalops.serving.http import Call, HttpError, Receive
from petalops.serving.openapi import Docs
from petalops.serving.prediction import Prediction
from petalops.serving.rows import column_rows
from petalops.serving.server import Server

PATH = "/columns/predict"


class Columns(Codec[dict[str, Any]]):
    """Predict rows sent as one array per feature; answers the class names in row order."""

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.example = {"columns": {name: [v] for name, v in self.shape.example_record.items()}}

    def routes(self, docs: Docs) -> list[Route]:
        number: Any = docs.number
        request = create_model("ColumnsRequest", columns=(dict[str, list[number]], ...))
        answer = create_model("ColumnsResponse", classes=(list[str], ...))
        return [
            Route(
                method="POST",
                path=PATH,
                codec=self,
                summary="Predict columns",
                tag="columns",
                request_schema=docs.ref(request),
                request_example=self.example,
                responses={
                    200: ("Class names", docs.ref(answer)),
                    **docs.errors(400, 404, 413, 415, 503),
                },
            )
        ]

    async def read(self, call: Call, receive: Receive) -> dict[str, Any]:
        data = await super().read(call, receive)
        if type(data) is not dict or type(data.get("columns")) is not dict:
            raise HttpError(400, "the body needs 'columns'", "columns", self.example)
        return data

    def decode(self, request: dict[str, Any], served: Served) -> list[list[float]]:
        return column_rows(
            request["columns"], served.features, self.max_batch, "columns", self.example
        )

    def encode(self, request: dict[str, Any], prediction: Prediction, call: Call) -> bytes:
        classes = prediction.served.classes
        return orjson.dumps({"classes": [classes[label] for label in prediction.labels]})


EXAMPLE = {"columns": {name: [v] for name, v in zip(FEATURES, ROW, strict=True)}}
BODY = {"columns": {name: [a, b] for name, a, b in zip(FEATURES, ROW, VIRGINICA, strict=True)}}
AUTH = {"Authorization": "Bearer s3cret"}


@pytest.fixture
def plugged(settings: Settings, source: BundleSource, log_path: Path) -> Iterator[TestClient]:
    with log_path.open("ab") as log:
        app = create_app(
            settings, source=source, log_fd=log.fileno(), open_sink=False, codecs=[Columns]
        )
        with TestClient(app, raise_server_exceptions=False) as client:
            client.app.server.side.sink = ListSink()  # type: ignore[attr-defined]
            yield client


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_codec_from_elsewhere_answers_through_the_dispatcher(
    plugged: TestClient, log_path: Path
) -> None:
    counted = {"route": PATH, "status": "200", "model_version": "1", "variant": "champion"}
    rows = {"model_version": "1", "variant": "champion", "class_name": "virginica"}
    requests_before = _sample("petalops_requests_total", counted)
    rows_before = _sample("petalops_predictions_total", rows)

    response = plugged.post(PATH, json=BODY, headers={"X-Request-ID": "cols-1"})

    assert response.status_code == 200, response.text
    assert response.json() == {"classes": ["setosa", "virginica"]}
    assert response.headers["x-model-version"] == "1"
    assert response.headers["x-request-id"] == "cols-1"
    plugged.app.server.metrics.flush()  # type: ignore[attr-defined]
    assert _sample("petalops_requests_total", counted) == requests_before + 1
    assert _sample("petalops_predictions_total", rows) == rows_before + 1
    logged = [e for e in log_lines(plugged.app, log_path) if e.get("request_id") == "cols-1"]
    assert [(e["event"], e["route"], e["status"]) for e in logged] == [("request", PATH, 200)]
    records = plugged.app.server.side.sink.records  # type: ignore[attr-defined]
    assert [(r["route"], r["row"], r["prediction"], r["features"]) for r in records] == [
        (PATH, 0, 0, ROW),
        (PATH, 1, 2, VIRGINICA),
    ]


def test_its_bad_input_is_a_json_400_and_the_shipped_routes_still_answer(
    plugged: TestClient,
) -> None:
    missing = plugged.post(PATH, json={"columns": {"sepal_length": [5.1]}})
    assert missing.status_code == 400
    assert missing.json()["field"] == "columns.sepal_width"
    assert missing.json()["example"] == EXAMPLE
    assert plugged.post(PATH, json=[1]).json()["field"] == "columns"
    assert plugged.get(PATH).status_code == 405
    assert plugged.post("/predict", json={"features": ROW}).status_code == 200


def test_the_champion_answers_when_the_challenger_fails_it(
    plugged: TestClient, source: BundleSource
) -> None:
    source.faults = {"2": "error"}
    source.aliases = {"champion": "1", "challenger": "2"}
    source.policy = TrafficPolicy(strategy="canary", weight=100, rollout_id="r-1")
    plugged.post("/admin/reload", headers=AUTH)

    response = plugged.post(PATH, json=BODY)

    assert response.status_code == 200, response.text
    assert response.json() == {"classes": ["setosa", "virginica"]}
    assert response.headers["x-model-version"] == "1"
    records = plugged.app.server.side.sink.records  # type: ignore[attr-defined]
    assert [(r["model_version"], r["variant"], r["status"]) for r in records] == [
        ("2", "challenger", 500),
        ("1", "champion", 200),
        ("1", "champion", 200),
    ]


def test_it_is_documented_in_openapi(plugged: TestClient) -> None:
    document = plugged.get("/openapi.json").json()
    operation = document["paths"][PATH]["post"]
    assert operation["description"] == Columns.__doc__
    assert operation["tags"] == ["columns"]
    body = operation["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ColumnsRequest"}
    assert body["example"] == EXAMPLE
    request = document["components"]["schemas"]["ColumnsRequest"]
    assert request["required"] == ["columns"]
    assert set(operation["responses"]) == {"200", "400", "404", "405", "413", "415", "503"}
    assert [p["name"] for p in operation["parameters"]] == ["X-Model-Version"]
    assert "/predict" in document["paths"]
