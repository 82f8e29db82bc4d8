"""The control room's builder: one process per `petalops serve` that builds the state
document for all its workers, off their GILs, and only while someone looks.

Every TICK it looks at two mtimes: the wanted mark the workers touch when a tab polls
(`petalops.ui.document`) and the published document. While a tab asked within
IDLE_SECONDS and the document is older than `petalops.ui.state.FRESH_SECONDS`, it builds
it again (`petalops.ui.state.Publisher`). Idle, it costs two ``stat`` calls a tick and has
imported nothing heavy. It exits when its stdin closes: `petalops serve` holds the other end,
so it ends with the server, however the server ends.

    python -m petalops.ui.builder      # started by `petalops serve` (serving.runner)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from petalops.config import Settings
from petalops.logs import JsonFormatter
from petalops.ui.document import document_path, wanted_path

if TYPE_CHECKING:
    from petalops.ui.state import Publisher

# The settings `petalops serve` resolved, as JSON, for the builder it starts.
SETTINGS_ENV = "_PETALOPS_CONTROL_ROOM_SETTINGS"
TICK = 0.25
# A tab hidden in the background polls every 15 s: it still counts as looking.
IDLE_SECONDS = 20.0

log = logging.getLogger("petalops.ui.builder")


def wanted(path: Path, now: float) -> bool:
    """Whether a tab asked for the document at ``path`` within IDLE_SECONDS."""
    try:
        return now - wanted_path(path).stat().st_mtime < IDLE_SECONDS
    except OSError:
        return False


def run(settings: Settings, path: Path, stop: threading.Event) -> None:
    """Build while wanted until ``stop`` is set."""
    publisher: Publisher | None = None
    last_error = ""
    try:
        while not stop.wait(TICK):
            if not wanted(path, time.time()):
                continue
            if publisher is None:
                # Imported on first use: the read models load SQLAlchemy, numpy and scipy
                # (~1 s, ~60 MB), which a server nobody watches never needs.
                from petalops.ui.state import Publisher

                publisher = Publisher(settings, path=path)
            try:
                publisher.refresh()
                last_error = ""
            except Exception as exc:  # the next tick tries again; say so once per cause
                if repr(exc) != last_error:
                    last_error = repr(exc)
                    log.exception("the control room's document could not be built")
    finally:
        if publisher is not None:
            publisher.close()


def main() -> None:
    payload = os.environ.get(SETTINGS_ENV)
    if not payload:
        sys.stderr.write(f"petalops.ui.builder: {SETTINGS_ENV} is not set; run `petalops serve`\n")
        raise SystemExit(2)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Runs at niceness 5, set by `petalops serve` as it starts it (serving/runner.py).
    settings = Settings(**orjson.loads(payload))
    stop = threading.Event()
    # Ctrl-C reaches the whole process group: the builder ends when the server closes the
    # pipe (or sends SIGTERM), after the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def lifeline() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader at
        # interpreter exit aborts it ("Fatal Python error: _enter_buffered_busy").
        with contextlib.suppress(OSError):
            while os.read(0, 1024):
                pass
        stop.set()

    threading.Thread(target=lifeline, name="lifeline", daemon=True).start()
    run(settings, document_path(settings), stop)


if __name__ == "__main__":
    main()
