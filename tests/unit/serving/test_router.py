"""Path matching of the hot routes."""

from __future__ import annotations

from typing import Any

import pytest

from petalops.serving.codec import Route
from petalops.serving.reply import Reply
from petalops.serving.router import Router


async def _answer(call: Any, receive: Any) -> Reply:
    """A plain answer."""
    return Reply(body=b"{}")


def _route(method: str, path: str) -> Route:
    return Route(method=method, path=path, handler=_answer, summary="s", tag="t")


def test_exact_templated_and_unknown_paths() -> None:
    router = Router(
        [
            _route("GET", "/v2/models/{name}"),
            _route("POST", "/v2/models/{name}/versions/{version}/infer"),
            _route("POST", "/predict"),
            _route("GET", "/v1/models/{name}"),
            _route("POST", "/v1/models/{name}:predict"),
        ]
    )
    endpoint, params = router.match("/predict")
    assert endpoint is not None and endpoint.label == "/predict" and params == {}
    endpoint, params = router.match("/v2/models/iris/versions/3/infer")
    assert endpoint is not None
    assert endpoint.label == "/v2/models/{name}/versions/{version}/infer"
    assert params == {"name": "iris", "version": "3"}
    endpoint, params = router.match("/v1/models/iris:predict")
    assert endpoint is not None and endpoint.label == "/v1/models/{name}:predict"
    assert params == {"name": "iris"}
    assert router.match("/v1/models/iris")[0].label == "/v1/models/{name}"  # type: ignore[union-attr]
    assert router.match("/v2/models/iris/extra") == (None, {})
    assert router.match("/nothing") == (None, {})
    # Prediction (POST) templates are tried first.
    assert [endpoint.label for _, endpoint in router.templated][:2] == [
        "/v2/models/{name}/versions/{version}/infer",
        "/v1/models/{name}:predict",
    ]


def test_methods_of_one_path_and_their_allow_list() -> None:
    router = Router([_route("POST", "/x"), _route("GET", "/x")])
    endpoint, _ = router.match("/x")
    assert endpoint is not None
    assert set(endpoint.methods) == {"GET", "POST"}
    assert endpoint.allowed == "GET, POST"


def test_one_method_and_path_has_one_route() -> None:
    with pytest.raises(ValueError, match="two routes answer GET /x"):
        Router([_route("GET", "/x"), _route("GET", "/x")])


def test_a_templated_match_is_remembered_and_each_caller_gets_its_own_params() -> None:
    router = Router([_route("POST", "/v2/models/{name}/infer")])
    endpoint, params = router.match("/v2/models/iris/infer")
    assert endpoint is not None and params == {"name": "iris"}
    params["name"] = "changed"  # the caller's dict; the next match must not see it
    again, params = router.match("/v2/models/iris/infer")
    assert again is endpoint and params == {"name": "iris"}
    assert router.match("/v2/models/rose/infer")[1] == {"name": "rose"}
    assert router.match("/v2/models/iris/nope") == (None, {})


def test_the_remembered_paths_are_bounded() -> None:
    router = Router([_route("POST", "/v1/models/{name}:predict")])
    for i in range(Router.MATCHED_PATHS + 50):
        endpoint, params = router.match(f"/v1/models/m{i}:predict")
        assert endpoint is not None and params == {"name": f"m{i}"}
    assert len(router._matched) == Router.MATCHED_PATHS
    assert router.match(f"/v1/models/m{Router.MATCHED_PATHS + 10}:predict")[1] == {
        "name": f"m{Router.MATCHED_PATHS + 10}"
    }
