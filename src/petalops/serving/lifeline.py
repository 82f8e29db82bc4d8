"""A serving worker's tie to the `petalops serve` parent: when the parent dies, however it
dies (``kill -9`` included), the worker drains and exits instead of living on as an orphan
that holds the port with no spool loader behind it.

Two mechanisms, because each has a gap: Linux's parent-death signal (``PR_SET_PDEATHSIG``,
set through libc: neither uvicorn nor the standard library exposes it) fires at once but
only on Linux, and a thread that polls ``getppid()`` covers the other systems and the
instant between the worker's start and the ``prctl`` call. The signal is SIGTERM, so the
worker shuts down as uvicorn does on SIGTERM: stop accepting, finish in-flight requests,
flush its prediction rows.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading

PARENT_ENV = "_PETALOPS_SERVE_PARENT"
PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.25


def mark_parent() -> None:
    """In the `serve` parent, before the workers start: tell them whom to follow."""
    os.environ[PARENT_ENV] = str(os.getpid())


def follow_parent() -> bool:
    """In a worker: exit gracefully once the parent named by ``mark_parent`` is gone.
    False (and nothing done) in a process that has no such parent."""
    expected = os.environ.get(PARENT_ENV, "")
    if not expected.isdigit() or int(expected) == os.getpid():
        return False
    parent = int(expected)
    _parent_death_signal(signal.SIGTERM)
    watch = threading.Thread(target=_watch, args=(parent,), name="petalops-lifeline", daemon=True)
    watch.start()
    return True


def _parent_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)
    return False


def _watch(parent: int) -> None:
    # Re-parented (to init or a subreaper) means the parent is gone; checked at once too,
    # since it may have died before the death signal was armed.
    stop = threading.Event()
    while os.getppid() == parent:
        stop.wait(POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
