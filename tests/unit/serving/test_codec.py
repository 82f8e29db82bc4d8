"""The codec contract: `Route` records and what the `Codec` base gives every protocol."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import ROW

from petalops.serving.codec import Route
from petalops.serving.reply import Reply


async def _answer(call: Any, receive: Any) -> Reply:
    """Answer something.

    In two paragraphs.
    """
    return Reply(body=b"{}")


def test_a_route_has_a_codec_or_a_handler() -> None:
    with pytest.raises(ValueError, match="needs a codec or a handler"):
        Route(method="GET", path="/x", summary="s", tag="t")


def test_a_route_is_described_by_its_docstring_and_knows_its_version_parameter() -> None:
    route = Route(method="GET", path="/m/{version}", handler=_answer, summary="s", tag="t")
    assert route.description == "Answer something.\n\nIn two paragraphs."
    assert route.versioned
    plain = Route(method="GET", path="/m", handler=_answer, summary="s", tag="t", description="d")
    assert (plain.description, plain.versioned) == ("d", False)


def test_unknown_model_is_404(client: TestClient) -> None:
    tensor = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
    rose = client.post("/v2/models/rose/infer", json=tensor)
    assert rose.status_code == 404
    assert rose.json() == {
        "error": "model 'rose' is not served here; this server serves 'iris'",
        "field": "name",
        "example": "iris",
        "request_id": rose.headers["x-request-id"],
    }
    assert client.get("/v1/models/rose").status_code == 404
    assert client.post("/v1/models/rose:predict", json={"instances": [ROW]}).status_code == 404
