"""A worker follows its `serve` parent: SIGKILL the parent and the worker gets SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.utils.server_process import is_running

from petalops.serving.lifeline import PARENT_ENV, follow_parent

# A parent that marks itself, starts a "worker" following it, prints the worker's pid and
# waits. The worker records the signal it gets and exits on it.
PARENT = """
import subprocess, sys
from petalops.serving.lifeline import mark_parent
mark_parent()
worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
print(worker.pid, flush=True)
worker.wait()
"""
WORKER = """
import signal, sys, time
from pathlib import Path
from petalops.serving.lifeline import follow_parent
def on_term(signum, frame):
    Path(sys.argv[1]).write_text(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
assert follow_parent()
Path(sys.argv[1] + ".ready").touch()
time.sleep(60)
"""


@pytest.mark.parametrize("death_signal", [True, False])
def test_a_worker_gets_sigterm_when_its_parent_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, death_signal: bool
) -> None:
    marker = tmp_path / "signal"
    env = dict(os.environ)
    if not death_signal:  # the getppid() watch alone (what other systems rely on)
        env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
        (tmp_path / "sitecustomize.py").write_text(
            "import petalops.serving.lifeline as l\nl._parent_death_signal = lambda s: False\n"
        )
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, WORKER, str(marker)], stdout=subprocess.PIPE, env=env
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 30
        while not Path(str(marker) + ".ready").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        parent.kill()
        parent.wait(5)
        deadline = time.monotonic() + 10
        while is_running(worker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not is_running(worker)
        assert marker.read_text() == "SIGTERM"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)


def test_without_a_marked_parent_nothing_is_armed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PARENT_ENV, raising=False)
    assert follow_parent() is False
    monkeypatch.setenv(PARENT_ENV, str(os.getpid()))  # the parent itself (one worker)
    assert follow_parent() is False
