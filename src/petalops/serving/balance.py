"""Even connections across forked workers: a worker stops listening while one more
connection would put it over its share of all the workers' (``serve.balance_connections``).

The workers share one listening socket. libuv (under uvloop) accepts in a loop until the
kernel's queue is empty, and epoll wakes the workers in an order of its own, so one worker
takes a burst of new connections nearly whole: 64 keep-alive connections opened at once
split 51/13, 12/52, 1/63 or 64/0 between two workers (``ss -tnp`` per pid; uvicorn alone
does the same; Cloudflare's "Why does one NGINX worker take all the load?" is the same
effect). A client's pool stays split that way, and the loaded worker queues its requests.

Here each worker runs uvloop's own server (its C accept loop, its transports) on a
duplicate of the listening socket's descriptor, and publishes how many connections it
holds in a small table shared by the forked workers (an anonymous shared mapping the parent
creates before it forks them). A worker that one more connection would put over its share
closes its duplicate: the socket and its queue stay open in the siblings, which take the
next connections. It listens again once it is back within its share. uvicorn has no such
setting and no library offers one (Envoy's "exact" connection balancer and nginx's
``accept_mutex`` do this job in C), hence this module. SO_REUSEPORT (a queue per worker)
was not used: the queued connections of a killed worker would be reset with it.

It never refuses: a connection that waits ``MAX_DEFER`` with no sibling taking it (a
sibling in a long request, stopped, or killed and not yet replaced) is taken by the worker
that stepped back, and a worker that has gone, a zombie included, is not counted. Clients
that close after each answer are left to the kernel (`BalancedListener._churning`). Only
forked workers share the table; spawned workers (``serve.worker_start=spawn``) and a single
worker accept the way uvloop does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import multiprocessing
import os
import select
import socket
import ssl as ssl_module
from collections.abc import Callable, Coroutine
from time import monotonic
from typing import Any

import uvicorn.server

logger = logging.getLogger("petalops.serving")


class ConnectionTable:
    """Per worker: its pid and how many connections it holds, in a mapping shared by the
    processes forked after it is made. A slot's count is written by its own worker only
    (an aligned 8-byte store, which x86-64 and arm64 make whole; a stale read only skews one
    decision); claiming and clearing a slot take the lock."""

    SLOT = 2  # int64 pid, int64 connections

    def __init__(self, slots: int = 16) -> None:
        self.slots = slots
        self._map = mmap.mmap(-1, slots * self.SLOT * 8)  # MAP_SHARED | MAP_ANONYMOUS
        self._cells = memoryview(self._map).cast("q")
        self._lock = multiprocessing.get_context("fork").Lock()

    def _locked(self) -> contextlib.AbstractContextManager[Any]:
        # A worker killed while holding it must not stop its siblings: past the timeout,
        # go ahead unlocked (the worst case is two workers sharing a slot until one dies).
        taken = self._lock.acquire(timeout=0.5)

        @contextlib.contextmanager
        def held() -> Any:
            try:
                yield
            finally:
                if taken:
                    self._lock.release()

        return held()

    def claim(self, pid: int) -> int | None:
        """Take a free slot (or one whose process is gone) for ``pid``; None if full."""
        cells = self._cells
        with self._locked():
            for slot in range(self.slots):
                owner = cells[slot * 2]
                if owner == pid or owner == 0 or not _alive(owner):
                    cells[slot * 2 + 1] = 0
                    cells[slot * 2] = pid
                    return slot
        return None

    def release(self, slot: int, pid: int) -> None:
        with self._locked():
            if self._cells[slot * 2] == pid:
                self._cells[slot * 2] = 0
                self._cells[slot * 2 + 1] = 0

    def publish(self, slot: int, connections: int) -> None:
        self._cells[slot * 2 + 1] = connections

    def elsewhere(self, slot: int, check: bool = False) -> tuple[int, int]:
        """How many siblings there are and how many connections they hold in all. With
        ``check``, only live ones: a slot whose process is gone is cleared, so a killed
        worker's count holds no one back."""
        cells = self._cells
        pids, counts = cells[0::2].tolist(), cells[1::2].tolist()
        siblings = held = 0
        for other, (pid, count) in enumerate(zip(pids, counts, strict=True)):
            if pid == 0 or other == slot:
                continue
            if check and not _alive(pid):
                self.release(other, pid)
                continue
            siblings += 1
            held += count
        return siblings, held

    def counts(self) -> dict[int, int]:
        """pid → connections, of every claimed slot (for tests and diagnostics)."""
        cells = self._cells
        return {cells[s * 2]: cells[s * 2 + 1] for s in range(self.slots) if cells[s * 2] != 0}


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs. A killed worker stays a zombie until uvicorn's supervisor
    reaps it (it looks every 0.5 s), and signal 0 reaches a zombie: on Linux its state in
    /proc tells."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2][1:2] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CountedConnections(set[Any]):
    """uvicorn's set of open connections (``ServerState.connections``: its protocols add
    themselves on connection_made and discard themselves on connection_lost) that tells the
    listener each change, so siblings see this worker's count as it moves."""

    def __init__(self, added: Callable[[], None], removed: Callable[[], None]) -> None:
        super().__init__()
        self._added = added
        self._removed = removed

    def add(self, element: Any) -> None:
        if element not in self:
            super().add(element)
            self._added()

    def discard(self, element: Any) -> None:
        # uvicorn discards a protocol more than once (on shutdown, then on connection_lost).
        if element in self:
            super().discard(element)
            self._removed()


class BalancedListener:
    """One worker's share of the listening socket (module docstring): uvloop's own server
    on a duplicate of the socket's descriptor while the worker is within its share, closed
    (the descriptor only: the socket and its queue stay open in the siblings) while it is
    over. Has the two methods uvicorn's shutdown calls on its servers: close() and
    wait_closed()."""

    # Connections over its share a worker may take. With none, two workers take turns for
    # every connection of a burst, a loop turn each (a turn is up to ~2 ms under load): 64
    # connections took 60 to 130 ms to be accepted, and their first requests waited that
    # long (max latency 46-128 ms against 13-37 ms unbalanced, a forest model). With 2 they
    # were 16-23 ms, and 64 split 32/32 to 34/30.
    SLACK = 2
    LOOK = 0.001  # how soon a worker that left a connection to a sibling looks again
    MAX_DEFER = 0.005  # a connection queued this long while no sibling takes it: take it
    SHORT = 0.05  # connections that live less than this on average are left unbalanced
    WINDOW = 0.2  # over which that average is taken
    QUIET = 1.0  # no connection closed for this long: the next ones are balanced

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        table: ConnectionTable,
        connections: set[Any],
        ssl: ssl_module.SSLContext | None = None,
        backlog: int = 2048,
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.factory = protocol_factory
        self.table = table
        self.connections = connections
        self.ssl = ssl
        self.backlog = backlog
        self.pid = os.getpid()
        self.slot = table.claim(self.pid)
        self.server: asyncio.AbstractServer | None = None
        self._opening: asyncio.Task[asyncio.AbstractServer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._queued_since: float | None = None
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)
        self._watching = False
        self._closed = False
        self._closes = 0  # connections closed since _window_start
        self._window_start = self._changed_at = monotonic()
        self._held_seconds = 0.0  # connections held, times how long, since _window_start
        self._last_close = 0.0
        self._short = False
        self.stepped_back = 0  # times this worker stopped listening (tests, diagnostics)

    async def start(self) -> None:
        self.server = await self._listen()
        self.publish()

    def _listen(self) -> Coroutine[Any, Any, asyncio.AbstractServer]:
        # A duplicate each time: closing uvloop's server closes the descriptor it was given.
        return self.loop.create_server(
            self.factory, sock=self.sock.dup(), ssl=self.ssl, backlog=self.backlog
        )

    def publish(self) -> None:
        if self.slot is not None:
            self.table.publish(self.slot, len(self.connections))

    def _over(self, slack: int) -> bool:
        """Whether one more connection would put this worker over its fair share of all the
        live workers' connections (rounded up) plus ``slack``. Two workers are never both
        over it, so one of them always listens."""
        if self.slot is None:
            return False
        mine = len(self.connections) + 1
        # The liveness of the siblings (a system call each) is looked at only when the
        # counts alone say over.
        for check in (False, True):
            siblings, elsewhere = self.table.elsewhere(self.slot, check)
            if siblings == 0:
                return False
            share = -(-(mine + elsewhere) // (siblings + 1))  # ceiling
            if mine <= share + slack:
                return False
        return True

    # Called by CountedConnections, on each connection_made and connection_lost.
    def opened(self) -> None:
        now = self._held_until_now(1)
        self.publish()
        if (
            self.server is not None
            and not self._closed
            and not self._churning(now)
            and self._over(self.SLACK)
        ):
            self._step_back()

    def lost(self) -> None:
        self._last_close = self._held_until_now(-1)
        self._closes += 1
        self.publish()
        if self.server is None and self._opening is None and not self._over(0):
            self._step_in()

    def _held_until_now(self, change: int) -> float:
        """Add the connections held since the last change, times how long, to the window's
        connection-seconds (``change``: how the count just moved)."""
        now = monotonic()
        self._held_seconds += (len(self.connections) - change) * (now - self._changed_at)
        self._changed_at = now
        return now

    def _churning(self, now: float) -> bool:
        """Whether this worker's connections come and go within ``SHORT`` (clients that
        close after each answer). By Little's law, a connection lives on average the
        connections held over the connections closed a second, both over the last
        ``WINDOW``. There an uneven count lasts a moment and evens out by itself, and
        stepping back would only leave a core idle: measured, it cost a fifth of the
        requests a second of 16 clients without keep-alive. Once no connection has closed
        for ``QUIET``, the next ones are balanced again; a pool that opens sooner than that
        after such clients is split as the kernel splits it, as without balancing."""
        if now - self._last_close > self.QUIET:
            return False
        elapsed = now - self._window_start
        if elapsed >= self.WINDOW:
            held = self._held_seconds / elapsed
            self._short = held < (self._closes / elapsed) * self.SHORT
            self._window_start = now
            self._held_seconds = 0.0
            self._closes = 0
        return self._short

    def _step_back(self) -> None:
        assert self.server is not None
        self.server.close()  # the duplicate descriptor; accepted connections stay open
        self.server = None
        self.stepped_back += 1
        self._queued_since = None
        self._watch()

    # While it does not listen, the worker still watches the socket (its own descriptor,
    # not in uvloop's server): a connection queuing wakes it, and it decides then whether
    # to take it or leave it to a sibling that same wake-up woke too.
    def _watch(self) -> None:
        if not self._watching and not self._closed:
            self.loop.add_reader(self.sock.fileno(), self._someone_waits)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self.sock.fileno())

    def _someone_waits(self) -> None:
        self._unwatch()
        if not self._over(0):
            self._step_in()
            return
        # A sibling's turn. Look again in a moment (the socket stays readable until it is
        # taken: watching it meanwhile would spin).
        if self._queued_since is None:
            self._queued_since = monotonic()
        self._arm()

    def _arm(self) -> None:
        if self._timer is None and not self._closed:
            self._timer = self.loop.call_later(self.LOOK, self._look)

    def _look(self) -> None:
        self._timer = None
        if self._closed or self.server is not None or self._opening is not None:
            return
        if not self._queued():  # taken: watch for the next one
            self._queued_since = None
            self._watch()
            return
        waited = monotonic() - (self._queued_since or monotonic())
        if not self._over(0) or waited >= self.MAX_DEFER:
            # Its turn now, or no sibling has taken it: stalled (a long request, a stop),
            # or killed and not yet gone. Serve it here rather than keep the client waiting.
            self._step_in()
            return
        self._arm()

    def _queued(self) -> bool:
        """Whether a connection waits in the socket's queue (poll: any descriptor number)."""
        try:
            return bool(self._poll.poll(0))
        except OSError:
            return False

    def _step_in(self) -> None:
        if self._closed or self._opening is not None:
            return
        self._unwatch()
        # uvloop's create_server on a socket it is given runs to its end without waiting
        # for anything: run it here, so the worker accepts on its loop's next turn (a task
        # would take one turn more, and a burst of connections waits a turn each).
        opening = self._listen()
        try:
            opening.send(None)
        except StopIteration as done:
            self.server = done.value
            return
        except Exception as exc:  # it runs inside uvicorn's connection_lost too: never raise
            self._retry_later(exc)
            return
        opening.close()  # it wants to wait after all: the same on a task of its own
        task = self.loop.create_task(self._listen())
        self._opening = task
        task.add_done_callback(self._listening)

    def _retry_later(self, error: BaseException) -> None:
        # Out of descriptors for a moment (EMFILE): the siblings listen meanwhile.
        logger.warning("listening again failed, retrying: %r", error)
        self._queued_since = monotonic() - self.MAX_DEFER  # retry at the next look
        self._arm()

    def _listening(self, task: asyncio.Task[asyncio.AbstractServer]) -> None:
        self._opening = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._retry_later(error)
            return
        server = task.result()
        if self._closed:
            server.close()
            return
        self.server = server

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._unwatch()
        if self._timer is not None:
            self._timer.cancel()
        if self._opening is not None:
            self._opening.cancel()
        if self.server is not None:
            self.server.close()
        if self.slot is not None:
            self.table.release(self.slot, self.pid)

    async def wait_closed(self) -> None:
        return None


# Set by `use_balanced_accept` in the parent, before the workers are forked.
_TABLE: ConnectionTable | None = None


class BalancedServer(uvicorn.server.Server):
    """uvicorn's worker server with a `BalancedListener` in place of uvloop's accept loop,
    when the parent shared a `ConnectionTable` with it; else uvicorn's own."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        table = _TABLE
        usable = (
            table is not None
            and sockets is not None
            and len(sockets) == 1
            and sockets[0].family in (socket.AF_INET, socket.AF_INET6)
        )
        if not usable:
            await super().startup(sockets=sockets)
            return
        assert table is not None and sockets is not None
        # uvicorn's startup with no socket to listen on: the lifespan (the model opens),
        # the servers list, `started`. The listener below is added to that list, so
        # uvicorn's shutdown stops it the same way it stops its own.
        await super().startup(sockets=[])
        config = self.config
        loop = asyncio.get_running_loop()
        listener: BalancedListener | None = None

        def added() -> None:
            if listener is not None:
                listener.opened()

        def removed() -> None:
            if listener is not None:
                listener.lost()

        connections = CountedConnections(added, removed)
        self.server_state.connections = connections

        def create_protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )

        listener = BalancedListener(
            loop, sockets[0], create_protocol, table, connections, config.ssl, config.backlog
        )
        await listener.start()
        self.servers.append(listener)  # type: ignore[arg-type]


def use_balanced_accept(slots: int = 16) -> ConnectionTable:
    """In the parent, before uvicorn forks its workers: share a table with them and have
    each start a `BalancedServer`. uvicorn (pinned in constraints.txt) builds every worker's
    server from the module-level name ``uvicorn.supervisors.multiprocess.Server``, with no
    setting for it; the subclass changes only how connections are accepted."""
    import uvicorn.supervisors.multiprocess

    global _TABLE
    _TABLE = ConnectionTable(slots)
    uvicorn.supervisors.multiprocess.Server = BalancedServer  # type: ignore[attr-defined]
    return _TABLE
