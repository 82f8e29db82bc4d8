"""`Server.choose`: the one place a request's version and variant are chosen."""

from __future__ import annotations

import asyncio

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import ROW, BundleSource

from petalops.rollout.routing import TrafficPolicy
from petalops.serving.http import HttpError, parse_call
from petalops.serving.server import Server

AUTH = {"Authorization": "Bearer s3cret"}
TENSOR = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}


def test_any_version_can_be_addressed(client: TestClient) -> None:
    v2 = client.post("/v2/models/iris/versions/2/infer", json=TENSOR).json()
    assert v2["model_version"] == "2"
    by_header = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "2"})
    assert by_header.json()["model_version"] == "2"
    assert by_header.json()["variant"] == "pinned"
    unknown = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": "42"})
    assert unknown.status_code == 404
    assert unknown.json()["field"] == "version"
    assert client.post("/v2/models/iris/versions/x1/infer", json=TENSOR).status_code == 404


@pytest.mark.parametrize("value", ["", "latest", "-1", "1234567890"])
def test_malformed_version_header_is_400(client: TestClient, value: str) -> None:
    response = client.post("/predict", json={"features": ROW}, headers={"X-Model-Version": value})
    assert response.status_code == 400
    assert response.json()["field"] == "X-Model-Version"


def test_the_path_version_wins_over_the_header(client: TestClient) -> None:
    server: Server = client.app.server  # type: ignore[attr-defined]
    call = parse_call({"method": "POST", "path": "/x", "headers": [(b"x-model-version", b"nope")]})
    _, served, variant = asyncio.run(server.choose(call, "2"))
    assert (served.version, variant) == ("2", "pinned")
    with pytest.raises(HttpError) as refused:
        asyncio.run(server.choose(call))
    assert refused.value.field == "X-Model-Version"


def test_the_policy_picks_by_key_and_champion_only_overrides_it(
    client: TestClient, source: BundleSource
) -> None:
    source.aliases = {"champion": "1", "challenger": "2"}
    source.policy = TrafficPolicy(strategy="canary", weight=100, rollout_id="r-1")
    client.post("/admin/reload", headers=AUTH)
    server: Server = client.app.server  # type: ignore[attr-defined]
    call = parse_call({"method": "POST", "path": "/x", "headers": [(b"x-petalops-key", b"k")]})
    snapshot, served, variant = asyncio.run(server.choose(call))
    assert snapshot is server.holder.snapshot
    assert (served.version, variant) == ("2", "challenger")
    call.champion_only = True
    _, served, variant = asyncio.run(server.choose(call))
    assert (served.version, variant) == ("1", "champion")
    # A version that holds an alias is answered under the alias's name.
    header = parse_call({"method": "POST", "path": "/x", "headers": [(b"x-model-version", b"2")]})
    _, served, variant = asyncio.run(server.choose(header))
    assert (served.version, variant) == ("2", "challenger")
