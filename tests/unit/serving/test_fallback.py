"""The FastAPI side: unknown paths, its errors as the hot routes' JSON, the merged OpenAPI."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter
from starlette.testclient import TestClient

from petalops.errors import NotFoundError, UnservableError
from petalops.serving.app import PetalopsApp
from petalops.serving.fallback import Fallback, build_api


def test_unknown_path_is_json_404(client: TestClient) -> None:
    response = client.get("/nothing/here", headers={"X-Request-ID": "r-404"})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": "no route /nothing/here; see /docs for the routes (for example POST /predict)",
        "request_id": "r-404",
    }


def _with_router(app: PetalopsApp, router: APIRouter) -> TestClient:
    server = app.server
    hot: dict[str, Any] = {"/hot": {"get": {"summary": "a hot route"}}}
    api = build_api(server, [router], lambda schema: (hot, {"Thing": {"type": "object"}}))
    return TestClient(Fallback(server, api), raise_server_exceptions=False)


def test_domain_errors_in_fastapi_routes_use_the_one_table(app: PetalopsApp) -> None:
    router = APIRouter()

    @router.get("/missing")
    async def missing() -> None:
        raise NotFoundError("no such thing", field="thing")

    @router.get("/unservable")
    async def unservable() -> None:
        raise UnservableError("version 9 cannot be served")

    @router.get("/typed")
    async def typed(n: int) -> int:
        return n

    client = _with_router(app, router)
    response = client.get("/missing", headers={"X-Request-ID": "r-1"})
    assert (response.status_code, response.json()) == (
        404,
        {"error": "no such thing", "field": "thing", "request_id": "r-1"},
    )
    assert client.get("/unservable").status_code == 409
    invalid = client.get("/typed", params={"n": "x"})
    assert invalid.status_code == 400
    assert invalid.json()["field"] == "query.n"


def test_openapi_merges_the_hot_paths_and_components(app: PetalopsApp) -> None:
    client = _with_router(app, APIRouter())
    document = client.get("/openapi.json").json()
    assert document["paths"]["/hot"] == {"get": {"summary": "a hot route"}}
    assert document["components"]["schemas"]["Thing"] == {"type": "object"}
    assert document["info"]["title"] == "petalops model server"


def test_docs_load_swagger_ui_from_the_package(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    loaded = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    loaded += re.findall(r"""url: ?["']([^"']+)["']""", page.text)
    assert "/docs/static/swagger-ui-bundle.js" in loaded and "/openapi.json" in loaded
    for url in loaded:
        assert url.startswith("/"), f"/docs loads {url} from elsewhere: blank offline"
        assert client.get(url).status_code == 200, url
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc would need a CDN
