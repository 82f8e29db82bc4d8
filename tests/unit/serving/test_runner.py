"""`petalops serve`'s spool loader process: started, restarted if it dies, stopped by EOF."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.monitoring.spool import LOADER_ENV, SPOOL_ENV
from petalops.serving import runner
from petalops.serving.runner import SidecarProcess, start_spool_loader

# Stands in for the loader: counts its starts, exits at once on the first, else waits for
# the end of its stdin and leaves a mark.
FAKE_LOADER = """
import pathlib, sys
here = pathlib.Path(sys.argv[1])
starts = here / "starts"
n = int(starts.read_text()) + 1 if starts.exists() else 1
starts.write_text(str(n))
if n == 1:
    sys.exit(3)
sys.stdin.buffer.read()
(here / "drained").write_text("yes")
"""


def test_a_dead_loader_is_restarted_and_stop_lets_it_drain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SidecarProcess, "RESTART_SECONDS", 0.05)
    loader = SidecarProcess([sys.executable, "-c", FAKE_LOADER, str(tmp_path)], dict(os.environ))
    starts = tmp_path / "starts"
    deadline = time.monotonic() + 20
    while not starts.exists() or starts.read_text() != "2":
        assert time.monotonic() < deadline, "the loader was not restarted"
        time.sleep(0.05)
    assert not (tmp_path / "drained").exists()
    loader.stop(timeout=20)
    assert loader.process.returncode == 0
    assert (tmp_path / "drained").read_text() == "yes"


def test_workers_spool_only_when_the_loader_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SPOOL_ENV, "stale")
    off = Settings(home=tmp_path, serve={"log_predictions": False})
    assert start_spool_loader(off) is None
    assert SPOOL_ENV not in os.environ

    started: list[dict[str, str]] = []

    class Recorded:
        def __init__(self, command: list[str], env: dict[str, str], name: str = "") -> None:
            started.append(env)

    monkeypatch.setattr(runner, "SidecarProcess", Recorded)
    on = Settings(home=tmp_path)
    assert start_spool_loader(on) is not None
    assert os.environ[SPOOL_ENV] == str(tmp_path.resolve() / "spool")
    assert '"url"' in started[0][LOADER_ENV]


def test_a_forked_worker_holds_no_copy_of_a_side_process_lifeline() -> None:
    """A side process must see the end of its stdin when `serve` dies, not only once every
    forked worker has gone too."""
    import multiprocessing
    import stat

    side = SidecarProcess([sys.executable, "-c", "import sys; sys.stdin.read()"], dict(os.environ))
    fd = side.process.stdin.fileno()  # type: ignore[union-attr]
    assert stat.S_ISFIFO(os.fstat(fd).st_mode)
    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)
    child = fork.Process(target=lambda: send.send(stat.S_ISFIFO(os.fstat(fd).st_mode)))
    child.start()
    in_child_a_pipe = receive.recv()
    child.join(10)
    try:
        assert in_child_a_pipe is False
    finally:
        side.stop(timeout=10)
    assert side.process.returncode == 0


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="Linux scheduling policies")
def test_a_side_process_yields_to_the_workers() -> None:
    """Niced, and a batch job to the scheduler: no wakeup preemption of a worker."""
    side = SidecarProcess([sys.executable, "-c", "import sys; sys.stdin.read()"], dict(os.environ))
    try:
        pid = side.process.pid
        assert os.sched_getscheduler(pid) == os.SCHED_BATCH
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, own + SidecarProcess.SIDE_NICENESS)
    finally:
        side.stop(timeout=10)
    assert side.process.returncode == 0
