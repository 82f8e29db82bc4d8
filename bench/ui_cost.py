"""What open control-room tabs cost `petalops serve`, in one run on 127.0.0.1.

    .venv/bin/python bench/ui_cost.py                      # 10 tabs, 3 rounds of 10 s
    .venv/bin/python bench/ui_cost.py --tabs 50 --duration 5 --rounds 1

Each tab loads /ui once, then polls /ui/state every ``poll_seconds`` with the last ETag
(what the page's ``fetch(..., {cache: "no-cache"})`` does). Under one server, in
interleaved rounds (without tabs, with tabs):

* /predict req/s from wrk without and with the tabs open (noisy on a shared machine);
* what the tabs cost, in CPU seconds per second, in two parts: the workers answering the
  polls (their CPU with the tabs open and no other load, less without), and the builder
  process building the document (`petalops.ui.builder`): one build of each kind timed on
  this run's own registry and prediction log (a full one, one without the accuracy
  timeline, the rollout and traffic part, a reused one), amortized over how often each
  runs. Its CPU while the tabs were open is
  printed beside it, as a check;
* that cost against the server's CPU per /predict at full load: the share of /predict
  capacity the tabs use.

Prints figures; never asserts on time (they depend on the machine and what else runs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
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

from petalops.config import Settings  # noqa: E402
from petalops.ui.document import document_path, wanted_path  # noqa: E402
from petalops.ui.state import (  # noqa: E402
    FRESH_SECONDS,
    ROLLOUT_SECONDS,
    SLOW_SECONDS,
    TIMELINE_SECONDS,
)


class Tabs:
    """``n`` browser tabs as the page behaves: the page once, then the state on a timer."""

    def __init__(self, base: str, n: int, poll_seconds: float) -> None:
        self.base, self.n, self.poll = base, n, poll_seconds
        self.requests = 0
        self.unchanged = 0  # answered 304: the tab's copy was current
        self.failures = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _get(self, path: str, etag: str = "") -> str:
        """GET ``path`` (revalidating ``etag``, as the browser does for the page's
        ``fetch(..., {cache: "no-cache"})``); the answer's ETag."""
        request = urllib.request.Request(self.base + path)
        if etag:
            request.add_header("If-None-Match", etag)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                etag = response.headers.get("etag", "")
            self.requests += 1
        except urllib.error.HTTPError as exc:
            if exc.code != 304:
                self.failures += 1
            else:
                self.requests += 1
                self.unchanged += 1
        except OSError:
            self.failures += 1
        return etag

    def _tab(self, offset: float) -> None:
        for path in ("/ui", "/ui/control-room.js", "/ui/uPlot.iife.min.js"):
            self._get(path)
        self._stop.wait(offset)  # tabs opened at different moments poll out of phase
        etag = ""
        while not self._stop.is_set():
            etag = self._get("/ui/state", etag)
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


BUILD_COSTS = """
import json, statistics, time
from petalops.config import load_settings
from petalops.ui.state import FRESH_SECONDS, ROLLOUT_SECONDS, SLOW_SECONDS, Sources, build_state

sources = Sources(load_settings())
build_state(sources)  # imports, connections, the registry's memos: once per builder


def cpu(build):
    times = []
    for _ in range(3):
        started = time.process_time()
        build()
        times.append(time.process_time() - started)
    return statistics.median(times)


full = build_state(sources)
at = full["generated"]
print(json.dumps({
    "full": cpu(lambda: build_state(sources)),
    "slow": cpu(lambda: build_state(sources, full, now=at + SLOW_SECONDS + 1)),
    "live": cpu(lambda: build_state(sources, full, now=at + ROLLOUT_SECONDS + 1)),
    "reused": cpu(lambda: build_state(sources, full, now=at + FRESH_SECONDS)),
}))
"""


def build_costs(home: Path, monitor_db: Path) -> dict[str, float]:
    """CPU seconds of one build of each kind, on the server's registry and prediction log."""
    env = {
        **os.environ,
        "PETALOPS_HOME": str(home),
        "PETALOPS_MONITOR__DB_URL": f"sqlite:///{monitor_db}",
    }
    done = subprocess.run(
        [sys.executable, "-c", BUILD_COSTS],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    costs: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return costs


def builder_pid(server: int) -> int | None:
    """The control room builder among the server's processes."""
    pending = [server]
    while pending:
        current = pending.pop()
        try:
            if b"petalops.ui.builder" in Path(f"/proc/{current}/cmdline").read_bytes():
                return current
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        pending.extend(int(c) for c in children)
    return None


def wrk_get(url: str, headers: dict[str, str], seconds: float, workdir: Path) -> tuple[float, int]:
    """GETs of ``url`` from wrk (8 connections) for ``seconds``: (req/s, how many were
    not 2xx: with a current ETag, the 304s)."""
    script = workdir / "get.lua"
    script.write_text("".join(f"wrk.headers[\"{k}\"] = '{v}'\n" for k, v in headers.items()))
    command = ["wrk", "-t", "1", "-c", "8", "-d", f"{max(1, round(seconds))}s", "-s", str(script)]
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    found = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, int(found[1]) if found else 0


class Meter:
    """CPU seconds of the server's processes: all of them, and the builder's alone."""

    def __init__(self, server: int, builder: int | None) -> None:
        self.server, self.builder = server, builder

    def read(self) -> tuple[float, float]:
        mine = tree_cpu_seconds(self.builder) if self.builder else 0.0
        return tree_cpu_seconds(self.server), mine


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
        settings = Settings(home=home)  # type: ignore[call-arg]
        wanted = wanted_path(document_path(settings))
        tally = Tabs(base, 0, args.poll_seconds)  # sums the requests of every round's tabs

        def closed(tabs: Tabs) -> None:
            tally.requests += tabs.requests
            tally.unchanged += tabs.unchanged
            tally.failures += tabs.failures
            # Nobody looks any more: the builder stops now rather than IDLE_SECONDS later,
            # so the next measurement without tabs is one without the builder too.
            wanted.unlink(missing_ok=True)

        try:
            with Tabs(base, 1, args.poll_seconds) as tabs:
                time.sleep(4)  # the first document built (imports, connections) before timing
            closed(tabs)
            meter = Meter(process.pid, builder_pid(process.pid))
            plain: list[float] = []
            polled: list[float] = []
            cpu_per_predict: list[float] = []
            fresh_cpu: list[float] = []
            full_cpu: list[float] = []
            builder_cpu: list[float] = []
            for _ in range(args.rounds):
                cpu, _ = meter.read()
                rps, *_ = wrk(base + path, body, args.connections, args.duration, workdir)
                cpu_per_predict.append((meter.read()[0] - cpu) / (rps * args.duration))
                plain.append(rps)
                with Tabs(base, args.tabs, args.poll_seconds) as tabs:
                    _, built = meter.read()
                    polled.append(
                        wrk(base + path, body, args.connections, args.duration, workdir)[0]
                    )
                    builder_cpu.append((meter.read()[1] - built) / args.duration)
                closed(tabs)
                # The workers' CPU per poll, under polls alone (the builder's counted apart):
                # a tab's copy is current (304) or not (the whole document).
                etag = Tabs(base, 0, args.poll_seconds)._get("/ui/state")
                for sink, headers in ((fresh_cpu, {"If-None-Match": etag}), (full_cpu, {})):
                    cpu, built = meter.read()
                    rps, _ = wrk_get(base + "/ui/state", headers, args.duration / 2, workdir)
                    now, built_now = meter.read()
                    sink.append(
                        (now - cpu - (built_now - built)) / (rps * round(args.duration / 2))
                    )
                wanted.unlink(missing_ok=True)
        finally:
            stop(process)
        costs = build_costs(home, workdir / "monitor-petalops.db")

    without, with_tabs = statistics.median(plain), statistics.median(polled)
    per_predict = statistics.median(cpu_per_predict)
    # Every poll counted as a whole document (the 304s, cheaper, are shown beside it).
    per_poll, per_304 = statistics.median(full_cpu), statistics.median(fresh_cpu)
    answering = per_poll * args.tabs / args.poll_seconds
    # A build reuses what has not changed: the rollout and traffic part is read again every
    # ROLLOUT_SECONDS, drift and alerts every SLOW_SECONDS, the accuracy timeline every
    # TIMELINE_SECONDS (state.build_state).
    building = (
        costs["reused"] / FRESH_SECONDS
        + max(costs["live"] - costs["reused"], 0.0) / ROLLOUT_SECONDS
        + max(costs["slow"] - costs["live"], 0.0) / SLOW_SECONDS
        + max(costs["full"] - costs["slow"], 0.0) / TIMELINE_SECONDS
    )
    capacity = per_predict * without
    share = (answering + building) / capacity if capacity else float("nan")

    def rounds(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in values)

    print(
        f"{args.tabs} tabs polling /ui/state every {args.poll_seconds:g} s, {args.workers} workers"
    )
    print(f"  /predict req/s without tabs  {without:10.0f}   (rounds: {rounds(plain)})")
    print(f"  /predict req/s with tabs     {with_tabs:10.0f}   (rounds: {rounds(polled)})")
    print(f"  change                       {100 * (with_tabs / without - 1):+9.2f} %  (with noise)")
    print(
        f"  workers' CPU per poll        {1e6 * per_poll:10.1f} µs  (a 304: {1e6 * per_304:.1f} µs)"
    )
    print(
        f"  workers answering the tabs   {1000 * answering:10.2f} ms/s  ({tally.requests} "
        f"page requests, {tally.unchanged} of them 304, {tally.failures} failed)"
    )
    print(
        f"  one build (ms CPU)           full {1000 * costs['full']:.1f}, drift+alerts "
        f"{1000 * costs['slow']:.1f}, rollout+traffic {1000 * costs['live']:.1f}, reused "
        f"{1000 * costs['reused']:.1f}"
    )
    print(f"  builder, amortized           {1000 * building:10.2f} ms/s")
    print(
        f"  builder, measured with tabs  {1000 * statistics.median(builder_cpu):10.2f} ms/s"
        f"  (under load; a full build falls in a window only once per {SLOW_SECONDS:g} s)"
    )
    print(f"  server CPU per /predict      {1e6 * per_predict:10.1f} µs")
    print(f"  share of /predict capacity   {100 * share:10.3f} %")


if __name__ == "__main__":
    main()
