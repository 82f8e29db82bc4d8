"""`petalops serve --workers N` with ``serve.worker_start=fork`` (the default): the parent
opens the versions the registry says to serve once, before its workers are forked, and each
worker starts from that copy instead of importing petalops and loading the model again.

A spawned worker is a fresh interpreter: ~0.5 s of imports (FastAPI, pydantic, numpy,
ONNX Runtime) and a model load each, all at once on the same cores, before it can answer.
A forked one inherits the parent's imported modules and opened runtimes (shared with it,
copy-on-write) and only builds its app, so ``/readyz`` answers sooner (docs/scaling.md).

What is handed over, and what is not: the opened (checksum-verified) `ModelRuntime`s, keyed
by name, version and sha256. Each worker still resolves the registry itself, warms the
runtime it takes, wraps it for fault injection, counts the load in its own metrics and
opens its own prediction sink, SQLite connections and event loop: nothing the parent made
besides modules and runtimes crosses the fork. A failed preload is logged and changes
nothing: the workers load the model themselves, as spawned ones do.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from petalops.config import Settings
    from petalops.registry import VersionInfo
    from petalops.runtime.model import ModelRuntime

# (name, version, sha256) -> the runtime the parent opened, and the pid that opened it.
_PRELOADED: dict[tuple[str, str, str], tuple[ModelRuntime, int]] = {}


# What a worker imports after the fork unless the parent did (measured with sys.modules
# in a forked worker once ready): uvicorn's loop, lifespan, HTTP and WebSocket protocols
# for the options `runner.run` passes, and the prediction sink's store (SQLAlchemy, ~0.3 s
# a worker). A module missing here only costs start-up time, never behaviour.
WORKER_MODULES = (
    "uvicorn.loops.uvloop",
    "uvicorn.lifespan.on",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.auto",
    "petalops.serving.protocol",
    "petalops.monitoring.store",
    "petalops.database.engine",
    "petalops.database.migrations",
    "sqlalchemy.dialects.sqlite",
)


def preload(settings: Settings) -> list[str]:
    """In the `serve` parent, before the workers fork: import what every worker imports and
    open the champion, challenger and previous version the registry names now. Returns the
    versions opened; never raises."""
    from petalops.registry.resolve import open_runtime
    from petalops.serving import routes
    from petalops.serving.source import RegistrySource

    try:
        for name in WORKER_MODULES:
            importlib.import_module(name)
        routes.shipped()  # every codec's module (create_app imports them)
    except Exception as exc:  # a worker would meet it too, and report it there
        sys.stderr.write(f"petalops: worker modules not preloaded ({exc!r})\n")

    try:
        desired = RegistrySource(settings).desired()
    except Exception as exc:  # no model yet (--wait-for-model), registry down: workers retry
        sys.stderr.write(f"petalops: model not preloaded ({exc!r}); each worker loads it\n")
        return []
    opened: list[str] = []
    for info in (desired.champion, desired.challenger, desired.previous):
        if info is None:
            continue
        try:
            runtime = open_runtime(settings, info)
        except Exception as exc:  # the workers meet (and report) the same failure
            sys.stderr.write(
                f"petalops: version {info.version} not preloaded ({exc!r}); each worker loads it\n"
            )
            continue
        _PRELOADED[(info.name, info.version, info.sha256)] = (runtime, os.getpid())
        opened.append(info.version)
    return opened


def take(info: VersionInfo) -> tuple[ModelRuntime, int] | None:
    """In a forked worker: the runtime the parent opened for exactly this version (and the
    parent's pid), once; None when there is none (spawned worker, another version)."""
    found = _PRELOADED.pop((info.name, info.version, info.sha256), None)
    if found is None or found[1] == os.getpid():
        # Only a forked child takes it: in the parent itself (one worker runs in-process)
        # the holder loads as it always did.
        if found is not None:
            _PRELOADED[(info.name, info.version, info.sha256)] = found
        return None
    return found


def clear() -> None:
    """Forget every preloaded runtime (tests)."""
    _PRELOADED.clear()
