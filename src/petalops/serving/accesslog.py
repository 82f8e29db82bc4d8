"""One JSON line per request (and per server event) on stdout, written cheaply.

``logging`` with a JSON formatter costs ~10 µs a record; here a record is one orjson dump
appended to a buffer that is written with a single ``os.write`` at most every
``FLUSH_SECONDS`` or every ``FLUSH_BYTES``, and always at shutdown.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import orjson

FLUSH_SECONDS = 0.05
FLUSH_BYTES = 64 * 1024
PIPE_BUF = 4096


class JsonLog:
    """A buffered writer of JSON lines to a file descriptor (stdout by default)."""

    def __init__(self, fd: int | None = None, enabled: bool = True) -> None:
        self.fd = sys.stdout.fileno() if fd is None else fd
        self.enabled = enabled
        # A bytearray, not a list of lines: appending keeps no per-line objects alive
        # (measured ~1.5 µs a line against ~4.5 µs for list.append of bytes).
        self._buffer = bytearray()
        self._scheduled = False

    def request(
        self,
        request_id: str,
        method: str,
        route: str,
        status: int,
        seconds: float,
        version: str,
        variant: str,
    ) -> None:
        if not self.enabled:
            return
        self._append(
            orjson.dumps(
                {
                    "ts": time.time(),
                    "event": "request",
                    "request_id": request_id,
                    "method": method,
                    "route": route,
                    "status": status,
                    "latency_ms": seconds * 1000.0,
                    "model_version": version,
                    "variant": variant,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )

    def event(self, event: str, **fields: Any) -> None:
        """A server event (model loaded, reconcile failed...); always written at once."""
        line = {"ts": round(time.time(), 6), "event": event, "pid": os.getpid(), **fields}
        self._append(orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE))
        self.flush()

    def _append(self, line: bytes) -> None:
        buffer = self._buffer
        buffer += line
        if len(buffer) >= FLUSH_BYTES:
            self.flush()
        elif not self._scheduled:
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_scheduled)
                self._scheduled = True
            except RuntimeError:  # no running loop (tests, threads): write now
                self.flush()

    def _flush_scheduled(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        try:
            while data:
                # Workers share stdout: a write of at most PIPE_BUF bytes ending at a newline
                # is atomic on a pipe, so lines from two workers never interleave.
                cut = len(data)
                if cut > PIPE_BUF:
                    cut = data.rfind(b"\n", 0, PIPE_BUF) + 1 or data.find(b"\n") + 1 or cut
                written = os.write(self.fd, data[:cut])
                data = data[written:]
        except OSError:  # a closed stdout must never fail a request
            pass
