"""A hot request that arrives whole is answered without uvicorn's request cycle and task
(`PetalopsApp.answer_now`): byte for byte what the same request gets through ASGI, and
declined, with nothing done, where it might wait."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.testclient import TestClient
from tests.unit.serving.test_protocol import _connected
from tests.utils.serving import RECORD, ROW

from petalops.serving.app import PetalopsApp

OIP = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]}
# (method, path, body, extra headers, the status, whether it is answered directly)
REQUESTS: list[tuple[bytes, bytes, bytes, list[bytes], bytes, bool]] = [
    (b"POST", b"/predict", orjson.dumps({"features": ROW}), [], b"200", True),
    (b"POST", b"/v1/predict", orjson.dumps(RECORD), [], b"200", True),
    (b"POST", b"/v1/predict", orjson.dumps({"instances": [RECORD, RECORD]}), [], b"200", True),
    (b"POST", b"/invocations", orjson.dumps({"instances": [ROW]}), [], b"200", True),
    (
        b"POST",
        b"/invocations",
        b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n",
        [b"content-type: text/csv"],
        b"200",
        True,
    ),
    (b"POST", b"/v1/models/iris:predict", orjson.dumps({"instances": [ROW]}), [], b"200", True),
    (b"POST", b"/v1/models/nope:predict", orjson.dumps({"instances": [ROW]}), [], b"404", True),
    (b"POST", b"/v2/models/iris/infer", orjson.dumps(OIP), [], b"200", True),
    (b"POST", b"/predict", b'{"features": [1, 2,', [], b"400", True),
    (b"POST", b"/predict", orjson.dumps({"features": [1, 2]}), [], b"400", True),
    (b"POST", b"/predict", b"features=1", [b"content-type: text/plain"], b"415", True),
    (b"POST", b"/predict", b"x" * 2_000_000, [], b"413", False),  # past the high-water mark
    (b"HEAD", b"/predict", b"", [], b"405", False),  # no prediction route: through ASGI
    (b"POST", b"/predict", orjson.dumps({"features": ROW}), [b"x-model-version: 1"], b"200", False),
    (b"POST", b"/v2/models/iris/versions/1/infer", orjson.dumps(OIP), [], b"200", False),
    (b"GET", b"/healthz", b"", [], b"200", False),
]


def _request(method: bytes, path: bytes, body: bytes, extra: list[bytes]) -> bytes:
    head = [b"%s %s HTTP/1.1" % (method, path), b"host: t", b"x-request-id: same-id"]
    if body or method == b"POST":
        head.append(b"content-length: %d" % len(body))
    if not any(h.startswith(b"content-type") for h in extra):
        head.append(b"content-type: application/json")
    return b"\r\n".join(head + extra) + b"\r\n\r\n" + body


def _answer(app: PetalopsApp, request: bytes, direct: bool) -> tuple[bytes, bool]:
    """The bytes ``request`` is answered with, and whether it left a task to answer it."""

    async def main() -> tuple[bytes, bool]:
        raw, protocol = _connected(app)
        if not direct:
            protocol._answer_now = None
        protocol.data_received(request)
        tasked = bool(protocol.tasks)
        await asyncio.sleep(0)  # a direct answer goes out on the loop's next turn
        for _ in range(20):
            if not protocol.tasks:
                break
            await asyncio.sleep(0.01)
        return b"".join(raw.writes), tasked

    return asyncio.run(main())


def test_answered_directly_as_through_asgi_and_declined_where_it_might_wait(
    client: TestClient, app: PetalopsApp
) -> None:
    for method, path, body, extra, status, direct in REQUESTS:
        request = _request(method, path, body, extra)
        through_asgi, tasked = _answer(app, request, direct=False)
        assert tasked, path
        answer, tasked = _answer(app, request, direct=True)
        assert tasked is not direct, (method, path, extra)
        assert answer == through_asgi, (method, path, answer[:200], through_asgi[:200])
        assert answer.split(b" ", 2)[1] == status, (method, path, answer[:200])


def test_a_direct_answer_is_logged_with_the_version_that_answered(
    client: TestClient, app: PetalopsApp
) -> None:
    seen: list[tuple[Any, ...]] = []
    log = app.server.log
    request_log = log.request

    def recording(*args: Any) -> None:
        seen.append(args)
        request_log(*args)

    log.request = recording  # type: ignore[method-assign,assignment]
    answer, tasked = _answer(
        app, _request(b"POST", b"/predict", b'{"features":[1,2,3,4]}', []), True
    )
    assert not tasked and answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
    [(request_id, method, route, status, _, version, variant)] = seen
    assert (request_id, method, route, status, variant) == (
        "same-id",
        "POST",
        "/predict",
        200,
        "champion",
    )
    assert answer.count(b"x-model-version: " + version.encode()) == 1
