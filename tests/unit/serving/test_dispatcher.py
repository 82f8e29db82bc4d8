"""The one request path of every hot route: refusals, the error table, the version header,
the request log, and the champion answering for a failing challenger."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import RECORD, ROW, BundleSource, ListSink, log_lines

from petalops.config import Settings
from petalops.errors import (
    ConflictError,
    InputError,
    NotFoundError,
    PetalopsError,
    RegistryUnavailableError,
    UnservableError,
)
from petalops.rollout.routing import TrafficPolicy
from petalops.serving.app import PetalopsApp, create_app
from petalops.serving.codec import Codec, Route
from petalops.serving.holder import Snapshot
from petalops.serving.http import Call, Receive
from petalops.serving.openapi import Docs
from petalops.serving.reply import Reply

AUTH = {"Authorization": "Bearer s3cret"}
# Every prediction route, with a one-row body it answers with class 0.
PREDICTIONS: dict[str, Any] = {
    "/predict": {"features": ROW},
    "/v1/predict": RECORD,
    "/invocations": {"instances": [ROW]},
    "/v1/models/iris:predict": {"instances": [ROW]},
    "/v2/models/iris/infer": {
        "inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]
    },
}
HOT = list(PREDICTIONS)
# The label a request is counted and logged under: its route's path template.
LABELS = {path: path for path in PREDICTIONS} | {
    "/v1/models/iris:predict": "/v1/models/{name}:predict",
    "/v2/models/iris/infer": "/v2/models/{name}/infer",
}


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


@pytest.mark.parametrize("route", HOT)
def test_every_prediction_names_the_version_that_answered(client: TestClient, route: str) -> None:
    default = client.post(route, json=PREDICTIONS[route])
    assert default.status_code == 200, default.text
    assert default.headers["x-model-version"] == "1"
    pinned = client.post(route, json=PREDICTIONS[route], headers={"X-Model-Version": "2"})
    assert pinned.status_code == 200, pinned.text
    assert pinned.headers["x-model-version"] == "2"
    assert "x-model-version" not in client.get("/healthz").headers


def test_one_json_log_line_per_request(client: TestClient, log_path: Path) -> None:
    client.post("/predict", json={"features": ROW}, headers={"X-Request-ID": "log-me"})
    client.post("/predict", json={"features": [1]}, headers={"X-Request-ID": "log-bad"})
    lines = log_lines(client.app, log_path)
    requests = {r["request_id"]: r for r in lines if r["event"] == "request"}
    assert requests["log-me"]["status"] == 200
    assert requests["log-me"]["route"] == "/predict"
    assert requests["log-me"]["model_version"] == "1"
    assert requests["log-me"]["variant"] == "champion"
    assert requests["log-me"]["latency_ms"] >= 0
    assert requests["log-bad"]["status"] == 400


def _canary_with_a_failing_challenger(client: TestClient, source: BundleSource) -> ListSink:
    source.faults = {"2": "error"}
    source.aliases = {"champion": "1", "challenger": "2"}
    source.policy = TrafficPolicy(strategy="canary", weight=100, rollout_id="r-1")
    assert client.post("/admin/reload", headers=AUTH).json()["serving"]["challenger"] == "2"
    sink = ListSink()
    client.app.server.side.sink = sink  # type: ignore[attr-defined]
    return sink


@pytest.mark.parametrize("route", HOT)
def test_the_champion_answers_for_a_failing_challenger(
    client: TestClient, source: BundleSource, log_path: Path, route: str
) -> None:
    sink = _canary_with_a_failing_challenger(client, source)
    response = client.post(route, json=PREDICTIONS[route], headers={"X-Request-ID": "retried"})
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == "1"
    failed = [r for r in sink.records if r["status"] == 500]
    assert [(r["model_version"], r["variant"], r["route"]) for r in failed] == [
        ("2", "challenger", LABELS[route])
    ]
    answered = [r for r in sink.records if r["status"] == 200]
    assert [(r["model_version"], r["variant"], r["prediction"]) for r in answered] == [
        ("1", "champion", 0)
    ]
    events = log_lines(client.app, log_path)
    assert any(e["event"] == "variant_failed" and e["model_version"] == "2" for e in events)
    logged = [e for e in events if e["event"] == "request" and e["request_id"] == "retried"]
    assert [(e["status"], e["model_version"], e["variant"]) for e in logged] == [
        (200, "1", "champion")
    ]
    assert not any(e["event"] == "unhandled_error" for e in events)


def test_a_version_asked_for_is_not_answered_by_another(
    client: TestClient, source: BundleSource, log_path: Path
) -> None:
    sink = _canary_with_a_failing_challenger(client, source)
    response = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "2"})
    assert response.status_code == 500
    assert response.json()["error"].startswith("internal error")
    assert "x-model-version" not in response.headers
    assert sink.records == []
    events = log_lines(client.app, log_path)
    assert not any(e["event"] == "variant_failed" for e in events)
    assert any(e["event"] == "unhandled_error" and "injected fault" in e["error"] for e in events)


def test_when_the_champion_fails_too_the_caller_gets_a_plain_500(
    client: TestClient, source: BundleSource, log_path: Path
) -> None:
    source.faults = {"1": "error", "2": "error"}
    source.aliases = {"champion": "1", "challenger": "2"}
    source.policy = TrafficPolicy(strategy="canary", weight=100, rollout_id="r-1")
    client.app.server.holder.snapshot = Snapshot()  # type: ignore[attr-defined]  # reload v1 too
    client.post("/admin/reload", headers=AUTH)
    response = client.post("/predict", json={"features": ROW})
    assert response.status_code == 500
    assert set(response.json()) == {"error", "request_id"}
    assert "Traceback" not in response.text
    events = log_lines(client.app, log_path)
    assert any(e["event"] == "variant_failed" for e in events)
    unhandled = [e for e in events if e["event"] == "unhandled_error"]
    assert len(unhandled) == 1
    assert "InjectedFault" in unhandled[0]["traceback"]


class Refusing(Codec[None]):
    """Plain routes that raise each kind of failure, to prove the one error table."""

    ERRORS: ClassVar[dict[str, Exception]] = {
        "input": InputError("label 'rose' is not a class"),
        "missing": NotFoundError("no such thing", field="thing"),
        "unservable": UnservableError("version 9 cannot be served"),
        "conflict": ConflictError("held by another"),
        "registry": RegistryUnavailableError("registry at http://x is unreachable"),
        "bug": RuntimeError("a bug"),
    }

    def routes(self, docs: Docs) -> list[Route]:
        return [
            Route(
                method="GET",
                path="/refuse/{name}",
                handler=self.refuse,
                summary="Refuse",
                tag="test",
            )
        ]

    async def refuse(self, call: Call, receive: Receive) -> Reply:
        """Raise the failure named in the path."""
        raise self.ERRORS[call.params["name"]]


@pytest.fixture
def refusing(settings: Settings, source: BundleSource) -> Any:
    app: PetalopsApp = create_app(settings, source=source, open_sink=False, codecs=[Refusing])
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.mark.parametrize("name", [n for n in Refusing.ERRORS if n != "bug"])
def test_domain_errors_answer_the_status_their_class_carries(
    refusing: TestClient, name: str
) -> None:
    error = Refusing.ERRORS[name]
    assert isinstance(error, PetalopsError)
    response = refusing.get(f"/refuse/{name}", headers={"X-Request-ID": "r-9"})
    assert response.status_code == type(error).http_status
    expected = {"error": error.message, "request_id": "r-9"}
    if error.field is not None:
        expected["field"] = error.field
    assert response.json() == expected


def test_an_unexpected_failure_is_a_plain_500(refusing: TestClient) -> None:
    response = refusing.get("/refuse/bug")
    assert response.status_code == 500
    assert "a bug" not in response.text
