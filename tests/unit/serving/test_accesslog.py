"""The request log: JSON lines, written in whole lines of at most PIPE_BUF bytes."""

from __future__ import annotations

import json
import os

from petalops.serving.accesslog import PIPE_BUF, JsonLog


def _drain(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return data


def test_lines_are_json_and_writes_end_at_line_boundaries() -> None:
    read_end, write_end = os.pipe()
    writes: list[bytes] = []
    log = JsonLog(fd=write_end)
    real_write = os.write

    def recording_write(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    log._buffer += b"".join(
        json.dumps({"event": "request", "request_id": f"id-{i}"}).encode() + b"\n"
        for i in range(500)
    )
    os.write = recording_write  # type: ignore[assignment]
    try:
        log.flush()
        log.event("model_swapped", detail="x" * (PIPE_BUF * 2))
    finally:
        os.write = real_write  # type: ignore[assignment]
        os.close(write_end)
    lines = _drain(read_end).splitlines()
    os.close(read_end)
    assert len(lines) == 501
    assert [json.loads(line)["event"] for line in lines][-1] == "model_swapped"
    assert all(w.endswith(b"\n") for w in writes)
    assert all(len(w) <= PIPE_BUF for w in writes[:-1])  # the oversized line goes alone


def test_disabled_log_writes_nothing() -> None:
    read_end, write_end = os.pipe()
    log = JsonLog(fd=write_end, enabled=False)
    log.request("id", "POST", "/predict", 200, 0.001, "1", "champion")
    log.flush()
    os.close(write_end)
    assert _drain(read_end) == b""
    os.close(read_end)
