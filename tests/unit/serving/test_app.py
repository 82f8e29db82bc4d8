"""`create_app`: every shipped codec served, extra codecs beside them, one request id space
for the hot routes and the FastAPI fallback."""

from __future__ import annotations

import pkgutil

import pytest
from starlette.testclient import TestClient
from tests.utils.serving import ROW, BundleSource

from petalops.config import Settings
from petalops.serving import routes
from petalops.serving.app import PetalopsApp, create_app
from petalops.serving.codec import Codec, Route
from petalops.serving.openapi import Docs
from petalops.serving.routes.tutorial import Tutorial


def test_every_module_under_routes_is_served(app: PetalopsApp) -> None:
    codecs, routers = routes.shipped()
    modules = {info.name for info in pkgutil.iter_modules(routes.__path__)}
    assert {codec.__module__.rsplit(".", 1)[1] for codec in codecs} == modules - {"admin"}
    assert [router.prefix for router in routers] == ["/admin", "/ui"]
    served = {type(route.codec or route.handler.__self__) for route in app.router.routes}  # type: ignore[union-attr]
    assert served == set(codecs)


def test_routes_come_in_codec_order(app: PetalopsApp) -> None:
    orders = [type(r.codec or r.handler.__self__).order for r in app.router.routes]  # type: ignore[union-attr]
    assert orders == sorted(orders)
    assert app.router.routes[0].path == "/predict"


class Shadowing(Codec[None]):
    """Claims a path a shipped codec answers."""

    def routes(self, docs: Docs) -> list[Route]:
        return [Route(method="POST", path="/predict", codec=self, summary="x", tag="x")]


def test_two_codecs_cannot_answer_one_route(settings: Settings, source: BundleSource) -> None:
    with pytest.raises(ValueError, match="two routes answer POST /predict"):
        create_app(settings, source=source, open_sink=False, codecs=[Shadowing])


def test_the_same_codec_twice_is_refused(settings: Settings, source: BundleSource) -> None:
    with pytest.raises(ValueError, match="POST /predict"):
        create_app(settings, source=source, open_sink=False, codecs=[Tutorial])


def test_request_id_generated_and_unique(client: TestClient) -> None:
    first = client.post("/predict", json={"features": ROW}).headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    third = client.get("/docs").headers["x-request-id"]
    assert len({first, second, third}) == 3
    assert client.get("/docs", headers={"X-Request-ID": "mine"}).headers["x-request-id"] == "mine"


def test_startup_freezes_what_it_loaded(app: PetalopsApp) -> None:
    import gc

    gc.unfreeze()
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/readyz").status_code == 200
            # The heap of a started worker is out of the collector's sight.
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
