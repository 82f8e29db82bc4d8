"""What open control-room tabs cost `petalops serve`, in one run on 127.0.0.1.

    .venv/bin/python bench/ui_cost.py                      # 10 tabs, 3 rounds of 10 s
    .venv/bin/python bench/ui_cost.py --tabs 50 --duration 5 --rounds 1

Each tab loads /ui once, then polls /ui/state every ``poll_seconds`` (what the page does).
Two figures, each from interleaved rounds (without tabs, with tabs), under one server:

* /predict req/s from wrk without and with the tabs open (noisy on a shared machine);
* the server's CPU seconds per second spent on the tabs alone (no other load), against
  its CPU seconds per /predict at full load: the share of /predict capacity the tabs use.

Prints figures; never asserts on time (they depend on the machine and what else runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: bench.serve's helpers beside this file

from bench.serve import (  # noqa: E402
    free_port,
    routes_for,
    start,
    stop,
    trained_home,
    tree_cpu_seconds,
    wrk,
)


class Tabs:
    """``n`` browser tabs as the page behaves: the page once, then the state on a timer."""

    def __init__(self, base: str, n: int, poll_seconds: float) -> None:
        self.base, self.n, self.poll = base, n, poll_seconds
        self.requests = 0
        self.failures = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _get(self, path: str) -> None:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as response:
                response.read()
            self.requests += 1
        except OSError:
            self.failures += 1

    def _tab(self, offset: float) -> None:
        for path in ("/ui", "/ui/control-room.js", "/ui/uPlot.iife.min.js"):
            self._get(path)
        self._stop.wait(offset)  # tabs opened at different moments poll out of phase
        while not self._stop.is_set():
            self._get("/ui/state")
            self._stop.wait(self.poll)

    def __enter__(self) -> Tabs:
        for i in range(self.n):
            thread = threading.Thread(target=self._tab, args=(self.poll * i / self.n,))
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tabs", type=int, default=10, help="open control-room tabs")
    parser.add_argument("--poll-seconds", type=float, default=3.0, help="the page's interval")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="petalops-ui-cost-") as tmp:
        workdir = Path(tmp)
        home = trained_home(workdir)
        port = free_port()
        process, _ = start("petalops", port, args.workers, home, [], workdir)
        base = f"http://127.0.0.1:{port}"
        path, body = routes_for("iris")["predict"]
        try:
            with Tabs(base, 1, args.poll_seconds):
                time.sleep(2)  # the first document built (imports, connections) before timing
            plain: list[float] = []
            polled: list[float] = []
            cpu_per_predict: list[float] = []
            idle_cpu: list[float] = []
            tabs_cpu: list[float] = []
            polls = 0
            for _ in range(args.rounds):
                cpu = tree_cpu_seconds(process.pid)
                rps, *_ = wrk(base + path, body, args.connections, args.duration, workdir)
                cpu_per_predict.append(
                    (tree_cpu_seconds(process.pid) - cpu) / (rps * args.duration)
                )
                plain.append(rps)
                with Tabs(base, args.tabs, args.poll_seconds) as tabs:
                    polled.append(
                        wrk(base + path, body, args.connections, args.duration, workdir)[0]
                    )
                    polls += tabs.requests
                for sink, n in ((idle_cpu, 0), (tabs_cpu, args.tabs)):
                    with Tabs(base, n, args.poll_seconds) as tabs:
                        cpu = tree_cpu_seconds(process.pid)
                        time.sleep(args.duration)
                        sink.append((tree_cpu_seconds(process.pid) - cpu) / args.duration)
                    polls += tabs.requests
        finally:
            stop(process)

    without, with_tabs = statistics.median(plain), statistics.median(polled)
    per_predict = statistics.median(cpu_per_predict)
    spent = max(0.0, statistics.median(tabs_cpu) - statistics.median(idle_cpu))
    share = spent / (per_predict * without) if without and per_predict else float("nan")

    def rounds(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in values)

    print(
        f"{args.tabs} tabs polling /ui/state every {args.poll_seconds:g} s, {args.workers} workers"
    )
    print(f"  /predict req/s without tabs  {without:10.0f}   (rounds: {rounds(plain)})")
    print(f"  /predict req/s with tabs     {with_tabs:10.0f}   (rounds: {rounds(polled)})")
    print(f"  change                       {100 * (with_tabs / without - 1):+9.2f} %  (with noise)")
    print(f"  server CPU for the tabs      {1000 * spent:10.2f} ms/s  ({polls} page requests)")
    print(f"  server CPU per /predict      {1e6 * per_predict:10.1f} µs")
    print(f"  share of /predict capacity   {100 * share:10.3f} %")


if __name__ == "__main__":
    main()
