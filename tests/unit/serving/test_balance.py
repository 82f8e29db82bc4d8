"""Connections spread evenly across forked workers sharing one listening socket, and are
still accepted when a sibling stalls or is killed (serving/balance.py)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import socket
import time
from collections import Counter
from typing import Any

import pytest

from petalops.serving.balance import BalancedListener, ConnectionTable, CountedConnections

fork = multiprocessing.get_context("fork")

# The most two workers' counts can differ by after a burst: each stops listening once one
# more connection would put it SLACK over its share (rounded up).
EVEN = 2 * (BalancedListener.SLACK + 1)


class _Greeter(asyncio.Protocol):
    """Writes "<pid> <times its worker stepped back>\\n" to each new connection and keeps it
    open until the client closes; joins and leaves the worker's connection set the way
    uvicorn's protocols do."""

    def __init__(self, connections: set[Any], listener: list[BalancedListener]) -> None:
        self.connections = connections
        self.listener = listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.connections.add(self)
        steps = self.listener[0].stepped_back
        transport.write(f"{os.getpid()} {steps}\n".encode())  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)


def _worker(sock: socket.socket, table: ConnectionTable, ready: Any) -> None:
    import uvloop

    async def main() -> None:
        loop = asyncio.get_running_loop()
        holder: list[BalancedListener] = []

        def added() -> None:
            if holder:
                holder[0].opened()

        def removed() -> None:
            if holder:
                holder[0].lost()

        connections = CountedConnections(added, removed)
        listener = BalancedListener(
            loop, sock, lambda: _Greeter(connections, holder), table, connections
        )
        holder.append(listener)
        await listener.start()
        ready.set()
        await asyncio.sleep(3600)

    uvloop.run(main())


@pytest.fixture
def workers() -> Any:
    """Start ``n`` forked workers on one listening socket; yields (start, port)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    table = ConnectionTable(8)
    children: list[Any] = []

    def start(n: int) -> list[Any]:
        for _ in range(n):
            ready = fork.Event()
            child = fork.Process(target=_worker, args=(sock, table, ready), daemon=True)
            child.start()
            assert ready.wait(20), "a worker did not start"
            children.append(child)
        return children

    yield start, sock.getsockname()[1], table
    for child in children:
        if child.is_alive():
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
        child.join(10)
    sock.close()


def _connect(port: int, n: int) -> tuple[list[socket.socket], list[tuple[int, int]]]:
    """Open ``n`` connections at once, then read each one's greeting: (pid, steps back).
    A connection no worker accepts fails the test by its 5 s timeout."""
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    greetings = []
    for client in clients:
        line = b""
        while not line.endswith(b"\n"):
            chunk = client.recv(64)
            assert chunk, "a connection closed before its greeting"
            line += chunk
        pid, steps = line.split()
        greetings.append((int(pid), int(steps)))
    return clients, greetings


def _per_pid(greetings: list[tuple[int, int]]) -> Counter[int]:
    return Counter(pid for pid, _ in greetings)


def test_a_burst_of_connections_splits_evenly(workers: Any) -> None:
    start, port, table = workers
    children = start(2)
    for _ in range(3):  # a burst, closed, then another: both even
        clients, greetings = _connect(port, 64)
        pids = _per_pid(greetings)
        assert set(pids) == {c.pid for c in children}
        assert max(pids.values()) - min(pids.values()) <= EVEN, pids
        # Each worker publishes what it holds, for its siblings to compare theirs with.
        held = dict(pids)
        deadline = time.monotonic() + 5
        while table.counts() != held and time.monotonic() < deadline:
            time.sleep(0.01)
        assert table.counts() == held
        for client in clients:
            client.close()
        deadline = time.monotonic() + 5
        while any(table.counts().values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not any(table.counts().values())


def test_three_workers_split_a_burst_evenly(workers: Any) -> None:
    start, port, _ = workers
    start(3)
    clients, greetings = _connect(port, 60)
    pids = _per_pid(greetings)
    assert len(pids) == 3
    assert max(pids.values()) - min(pids.values()) <= EVEN, pids
    for client in clients:
        client.close()


def test_a_stopped_sibling_does_not_hold_connections_back(workers: Any) -> None:
    # Worker B stops (SIGSTOP: a long stall) holding as many connections as A: A is then
    # over its share with each new one, yet takes them once B has not for a moment (each
    # waits ~MAX_DEFER); one left waiting for B fails by _connect's timeout.
    start, port, _ = workers
    a, b = start(2)
    clients, _ = _connect(port, 20)
    os.kill(b.pid, signal.SIGSTOP)
    more, later = _connect(port, 30)
    assert set(_per_pid(later)) == {a.pid}
    assert later[-1][1] > later[0][1]  # A stepped back, and came back each time
    os.kill(b.pid, signal.SIGCONT)
    for client in clients + more:
        client.close()


def test_a_killed_sibling_is_no_longer_counted(workers: Any) -> None:
    # Killed and not yet reaped (a zombie until uvicorn's supervisor waits for it): the
    # count it published must not make the survivor step back.
    start, port, table = workers
    a, b = start(2)
    clients, _ = _connect(port, 20)
    os.kill(b.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not _zombie(b.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _zombie(b.pid)
    more, later = _connect(port, 40)
    assert set(_per_pid(later)) == {a.pid}
    assert {steps for _, steps in later} == {later[0][1]}  # never stepped back
    assert b.pid not in table.counts()  # its slot was cleared
    for client in clients + more:
        client.close()


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rpartition(b")")[2][1:2] == b"Z"


def test_short_lived_connections_are_told_from_a_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    # Clients that close after each answer: counts swing and even out by themselves, and
    # stepping back would only idle a core, so the worker must see them as churning. A
    # pool of keep-alive connections after a quiet spell must be balanced again.
    clock = [100.0]
    monkeypatch.setattr("petalops.serving.balance.monotonic", lambda: clock[0])
    loop = asyncio.new_event_loop()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        connections: set[Any] = set()
        listener = BalancedListener(loop, sock, asyncio.Protocol, ConnectionTable(2), connections)
        listener._closed = True  # it never listens here: only its bookkeeping is under test
        assert not listener._churning(clock[0])  # nothing closed yet
        for n in range(1000):  # 8 at a time, each living 2 ms: 4,000 closes a second
            clock[0] += 0.0005
            connections.add(n)
            listener.opened()
            if n >= 4:
                connections.discard(n - 4)
                listener.lost()
            churning = listener._churning(clock[0])
        assert churning
        clock[0] += 0.5  # then a pool of 32 opens and stays: connections live for seconds
        for n in range(2000, 2032):
            connections.add(n)
            listener.opened()
        for n in range(996, 1000):
            connections.discard(n)
            listener.lost()
        clock[0] += BalancedListener.QUIET + 0.01
        assert not listener._churning(clock[0])  # connections held for seconds: balanced
        clock[0] += 1.0  # pool connections closing one by one, seconds apart
        for n in range(2000, 2008):
            connections.discard(n)
            listener.lost()
            clock[0] += 0.3
            assert not listener._churning(clock[0])
    finally:
        sock.close()
        loop.close()


def test_table_slots_are_claimed_released_and_reclaimed_from_the_dead() -> None:
    table = ConnectionTable(2)
    me = os.getpid()
    mine = table.claim(me)
    assert mine is not None
    table.publish(mine, 7)
    child = fork.Process(target=time.sleep, args=(0,))
    child.start()
    child.join(10)  # exited and reaped: its pid names no process
    assert child.pid is not None
    other = table.claim(child.pid)
    assert other is not None and other != mine
    table.publish(other, 99)
    assert table.counts() == {me: 7, child.pid: 99}
    assert table.elsewhere(mine) == (1, 99)  # counts alone
    assert table.elsewhere(mine, check=True) == (0, 0)  # the dead one is cleared
    assert table.counts() == {me: 7}
    parent = os.getppid()
    assert table.claim(parent) == other  # its slot is free again, at 0
    assert table.counts() == {me: 7, parent: 0}
    assert table.claim(4_000_000) is None  # full: both owners run
    table.release(mine, me)
    assert table.counts() == {parent: 0}
