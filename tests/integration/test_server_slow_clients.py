"""Slow and abusive clients against a real `petalops serve`: idle sockets, half-sent headers
and bodies are cut off within their timeouts, a worker past its caps sheds load with 503 +
Retry-After, and the server keeps answering everyone else meanwhile."""

from __future__ import annotations

import contextlib
import resource
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from tests.utils.server_process import ServerProcess

from petalops.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IDLE = 1000
TIMEOUT = 2.0  # header, body and keep-alive timeouts of the server under test
MAX_IN_FLIGHT = 8
# Enough for the idle sockets, this test's other connections and the worker's own files.
FILES = 4096
ROW_BODY = b'{"features": [5.1, 3.5, 1.4, 0.2]}'


@pytest.fixture
def more_files() -> Iterator[None]:
    """Raise this process's open-file limit (the server inherits it), bounded; restored."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILES if hard == resource.RLIM_INFINITY else min(FILES, hard)
    if wanted < IDLE + 200:
        pytest.skip(f"the open-file limit ({hard}) is too low for {IDLE} sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed this socket (EOF or reset); answers are read and dropped."""
    try:
        while True:
            if not _readable(sock, 0):
                return False
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True


def _readable(sock: socket.socket, timeout: float) -> bool:
    # poll, not select: this test holds 1,000+ sockets, and inside the whole suite their
    # descriptors pass FD_SETSIZE (1024), which select() refuses.
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def _answer(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends on ``sock`` until it closes it (bounded by ``timeout``)."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _readable(sock, 0.05):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk
    return data + b"<still open>"


class Answering:
    """Sends a prediction every 50 ms on one keep-alive connection; counts the statuses."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.statuses: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._stop.wait(0.05):
                try:
                    status = str(client.post("/predict", content=ROW_BODY).status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.statuses[status] += 1

    def __enter__(self) -> Answering:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_slow_and_idle_clients_are_cut_off_and_load_is_shed(
    trained_settings: Settings, more_files: None
) -> None:
    server = ServerProcess(
        trained_settings.home_dir,
        workers=1,
        extra_args=[
            "--set",
            f"serve.header_timeout_seconds={TIMEOUT}",
            "--set",
            f"serve.body_timeout_seconds={TIMEOUT}",
            "--set",
            f"serve.keep_alive_seconds={TIMEOUT}",
            "--set",
            f"serve.max_in_flight={MAX_IN_FLIGHT}",
            "--set",
            f"serve.max_connections={IDLE + 1}",
        ],
    )
    sockets: list[socket.socket] = []
    try:
        server.wait_until("/readyz")
        with Answering(server.url) as answering:
            time.sleep(0.3)  # its keep-alive connection is the one beside the idle ones
            opened = time.monotonic()
            sockets = [_connect(server.port) for _ in range(IDLE)]
            # Past the cap on connections: the request on one more is shed at once.
            extra = _connect(server.port)
            extra.sendall(
                b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 34\r\n\r\n" + ROW_BODY
            )
            shed = _answer(extra, 5.0)
            extra.close()
            time.sleep(TIMEOUT + 1.5 - (time.monotonic() - opened))
            closed = sum(_closed(sock) for sock in sockets)
            waited = time.monotonic() - opened
            statuses = dict(answering.statuses)
        print(
            f"\n{closed} of {IDLE} idle sockets closed after {waited:.1f} s; meanwhile {statuses}"
        )
        assert closed == IDLE
        assert statuses.get("200", 0) >= 10 and set(statuses) == {"200"}, statuses
        assert shed.startswith(b"HTTP/1.1 503"), shed[:200]
        assert b"retry-after:" in shed.lower() and shed.endswith(b"}"), shed

        for sock in sockets:
            sock.close()
        sockets = []

        # Headers cut off half-way: the connection is closed after the header timeout.
        half = _connect(server.port)
        half.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\n")
        started = time.monotonic()
        assert _answer(half, TIMEOUT + 3) == b""
        header_cut = time.monotonic() - started
        half.close()

        # A body shorter than its Content-Length: 408 after the body timeout, then closed.
        short = _connect(server.port)
        short.sendall(b'POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{"fea')
        started = time.monotonic()
        answer = _answer(short, TIMEOUT + 3)
        body_cut = time.monotonic() - started
        short.close()
        print(
            f"half headers closed after {header_cut:.1f} s; short body: {answer[:60]!r} after {body_cut:.1f} s"
        )
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert header_cut <= TIMEOUT + 1.5 and body_cut <= TIMEOUT + 1.5

        # An idle keep-alive connection is closed after the keep-alive timeout.
        idle = _connect(server.port)
        idle.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 34\r\n\r\n" + ROW_BODY)
        kept = _answer(idle, TIMEOUT + 3)
        idle.close()
        assert kept.startswith(b"HTTP/1.1 200") and not kept.endswith(b"<still open>")

        # In-flight cap: requests waiting for their bodies fill the worker; the next is shed
        # with 503 + Retry-After until they time out, then it is answered again.
        waiting = [_connect(server.port) for _ in range(MAX_IN_FLIGHT)]
        for sock in waiting:
            sock.sendall(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 34\r\n\r\n{")
        time.sleep(0.3)
        busy = httpx.post(server.url + "/predict", content=ROW_BODY, timeout=5)
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] and "serve.max_in_flight" in busy.json()["error"]
        answers = [_answer(sock, TIMEOUT + 3) for sock in waiting]
        for sock in waiting:
            sock.close()
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
        again = httpx.post(server.url + "/predict", content=ROW_BODY, timeout=5)
        assert again.status_code == 200, again.text
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        server.stop()
