"""Header parsing and body reading of the raw-ASGI hot path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from petalops.serving.http import HttpError, new_request_id, parse_call, read_body


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/predict", "headers": headers}


def test_parse_call_reads_the_headers_it_needs() -> None:
    call = parse_call(
        _scope(
            [
                (b"content-type", b"application/json; charset=utf-8"),
                (b"content-length", b"12"),
                (b"x-request-id", b"abc-1"),
                (b"x-petalops-key", b"user-7"),
                (b"x-model-version", b" 3 "),
            ]
        )
    )
    assert call.request_id == "abc-1"
    assert call.routing_key == "user-7"
    assert call.model_version == "3"
    assert call.content_length == 12


def test_request_id_is_generated_when_absent_or_oversized() -> None:
    ids = {parse_call(_scope([])).request_id for _ in range(100)}
    assert len(ids) == 100
    long = parse_call(_scope([(b"x-request-id", b"x" * 500)]))
    assert long.request_id != "x" * 500
    assert new_request_id() != new_request_id()


def _ids_in_a_fork(send: Any) -> None:
    send.send([new_request_id() for _ in range(3)])


def test_forked_workers_hand_out_ids_of_their_own() -> None:
    # `petalops serve` forks its workers from a parent that imported this module: each
    # must still give ids no other worker gives (a label is joined to its prediction by id).
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    seen = [new_request_id()]
    for _ in range(2):
        receive, send = fork.Pipe(duplex=False)
        child = fork.Process(target=_ids_in_a_fork, args=(send,))
        child.start()
        seen += receive.recv()
        child.join(10)
    assert len(set(seen)) == len(seen)
    prefixes = {request_id.split("-")[0] for request_id in seen}
    assert len(prefixes) == 3  # the parent's and each child's


def test_read_body_joins_chunks_and_enforces_the_limit() -> None:
    async def run(chunks: list[bytes], limit: int, length: int = -1) -> bytes:
        messages = [
            {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
            for i, c in enumerate(chunks)
        ]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        headers = [(b"content-length", str(length).encode())] if length >= 0 else []
        return await read_body(receive, parse_call(_scope(headers)), limit)

    assert asyncio.run(run([b"ab", b"cd"], 10)) == b"abcd"
    with pytest.raises(HttpError) as chunked:
        asyncio.run(run([b"a" * 6, b"b" * 6], 10))
    assert chunked.value.status == 413
    with pytest.raises(HttpError) as declared:
        asyncio.run(run([b""], 10, length=11))
    assert declared.value.status == 413


def test_a_request_id_that_cannot_be_a_header_value_is_replaced() -> None:
    # Echoed in the answer's X-Request-Id, written without uvicorn's header check.
    for bad in (b"abc\x01def", b"caf\xc3\xa9", b"with space"):
        call = parse_call(_scope([(b"x-request-id", bad)]))
        assert call.request_id != bad.decode("latin-1")
        assert call.request_id.isascii() and call.request_id.isprintable()
    assert parse_call(_scope([(b"x-request-id", b"ok-1_2.3:4")])).request_id == "ok-1_2.3:4"
