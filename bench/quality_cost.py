"""What the serve-time data-quality counters cost /predict, in one run on 127.0.0.1.

    .venv/bin/python bench/quality_cost.py                     # 2 rounds of 10 s per case
    .venv/bin/python bench/quality_cost.py --rounds 3 --duration 5

Two ``petalops serve`` processes of the same trained model, each on its own copy of the
registry: one as shipped (``serve.quality_counters=true``: per-feature missing / out of
range / unseen / refused counts, `petalops.serving.inputquality`), one with
``--set serve.quality_counters=false``. wrk loads one at a time, in interleaved rounds (the
order swapped each round), with two bodies:

* ``in range``: the example row (what most traffic is: every value passes every check);
* ``out of range``: every value far past the training range, so every value is counted (the
  counters' worst case).

Prints req/s and the server's CPU µs per request (all its processes, from /proc) of each
measurement, then the medians and the change with the counters on. On a loaded machine
req/s moves by ±10 % between identical runs, so the bench also times the hook itself in
this process (`SideChannel.predicted` with the counters on and off, the same trained
model): its extra µs per request, next to the server's CPU µs per request, is the share of
/predict capacity the counters take, a figure the machine's load barely moves. Never
asserts on time: the figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import timeit
from pathlib import Path
from typing import Any

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

SERVERS = (("counters on", "quality-on", "true"), ("counters off", "quality-off", "false"))
HOOK_CALLS = 100_000
HOOK_REPEATS = 9


def hook_cost(home: Path, bodies: dict[str, Any]) -> dict[tuple[str, str], float]:
    """µs per request of the side channel's prediction work, counters on and off, in this
    process (the best of ``HOOK_REPEATS`` timings of ``HOOK_CALLS`` calls, interleaved:
    the least disturbed by the machine's other work)."""
    os.environ["PETALOPS_HOME"] = str(home)
    from petalops.config import Settings
    from petalops.registry import load_runtime
    from petalops.serving.accesslog import JsonLog
    from petalops.serving.holder import Served, Snapshot
    from petalops.serving.inputquality import InputQuality
    from petalops.serving.metrics import RequestMetrics
    from petalops.serving.prediction import Prediction
    from petalops.serving.rows import predict_rows
    from petalops.serving.sidechannel import SideChannel

    runtime = load_runtime(Settings(), None)  # type: ignore[call-arg]
    served = Served(
        runtime,
        runtime.name,
        runtime.version,
        "bench",
        [float(v) for v in runtime.feature_min],
        [float(v) for v in runtime.feature_max],
    )
    snapshot = Snapshot(champion=served)
    out: dict[tuple[str, str], list[float]] = {}
    for _ in range(HOOK_REPEATS):
        for case, body in bodies.items():
            rows = [body["features"]]
            labels, probas = predict_rows(runtime, rows)
            prediction = Prediction(snapshot, served, "champion", rows, labels, probas)
            for label, _, flag in SERVERS:
                metrics = RequestMetrics()
                quality = InputQuality(metrics, enabled=flag == "true")
                side = SideChannel(metrics, JsonLog(enabled=False), None, quality)
                seconds = timeit.timeit(
                    lambda side=side, prediction=prediction: side.predicted(
                        "r", "/predict", prediction, 0.001
                    ),
                    number=HOOK_CALLS,
                )
                metrics.flush()
                out.setdefault((case, label), []).append(seconds / HOOK_CALLS * 1e6)
    return {key: min(values) for key, values in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="petalops-quality-cost-") as tmp:
        workdir = Path(tmp)
        home = trained_home(workdir)
        path, body = routes_for("iris")["predict"]
        assert isinstance(body, dict)
        bodies = {
            "in range": body,
            "out of range": {"features": [v * 10.0 + 50.0 for v in body["features"]]},
        }
        servers = {}
        try:
            for label, target, flag in SERVERS:
                # A registry copy each: the spool, elections and reload trigger live in it.
                own = workdir / f"home-{target}" / ".petalops"
                shutil.copytree(home, own, ignore=shutil.ignore_patterns("serve", "spool"))
                port = free_port()
                process, _ = start(
                    target,
                    port,
                    args.workers,
                    own,
                    [f"serve.quality_counters={flag}"],
                    workdir,
                )
                servers[label] = (process, f"http://127.0.0.1:{port}{path}")
            for _, url in servers.values():  # warm both: first requests, imports
                wrk(url, body, args.connections, 2, workdir)
            rps: dict[tuple[str, str], list[float]] = {}
            cpu: dict[tuple[str, str], list[float]] = {}
            print(
                f"/predict, {args.workers} workers, wrk -c {args.connections}, "
                f"{args.duration:.0f} s per measurement, {args.rounds} rounds",
                flush=True,
            )
            for n in range(args.rounds):
                order = list(servers) if n % 2 == 0 else list(reversed(servers))
                for case, payload in bodies.items():
                    for label in order:
                        process, url = servers[label]
                        before = tree_cpu_seconds(process.pid)
                        measured, _, p99, errors = wrk(
                            url, payload, args.connections, args.duration, workdir
                        )
                        used = tree_cpu_seconds(process.pid) - before
                        per_request = used / max(measured * args.duration, 1.0) * 1e6
                        rps.setdefault((case, label), []).append(measured)
                        cpu.setdefault((case, label), []).append(per_request)
                        print(
                            f"  round {n + 1}  {case:12}  {label:12}  {measured:8.0f} req/s  "
                            f"p99 {p99:6.2f} ms  cpu {per_request:5.0f} µs/req  errors {errors}",
                            flush=True,
                        )
            hook = hook_cost(home, bodies)
            print("medians (counters on vs off):")
            for case in bodies:
                on_rps = statistics.median(rps[(case, "counters on")])
                off_rps = statistics.median(rps[(case, "counters off")])
                on_cpu = statistics.median(cpu[(case, "counters on")])
                off_cpu = statistics.median(cpu[(case, "counters off")])
                print(
                    f"  {case:12}  on {on_rps:8.0f} req/s  off {off_rps:8.0f} req/s  "
                    f"change {100.0 * (on_rps - off_rps) / off_rps:+5.1f} %   "
                    f"cpu on {on_cpu:5.0f} µs/req  off {off_cpu:5.0f} µs/req  "
                    f"change {100.0 * (on_cpu - off_cpu) / off_cpu:+5.1f} %"
                )
            print(
                f"the hook alone, in this process (SideChannel.predicted, best of {HOOK_REPEATS}):"
            )
            for case in bodies:
                on, off = hook[(case, "counters on")], hook[(case, "counters off")]
                server_cpu = statistics.median(cpu[(case, "counters off")])
                print(
                    f"  {case:12}  on {on:5.2f} µs/req  off {off:5.2f} µs/req  extra "
                    f"{on - off:+5.2f} µs/req = {100.0 * (on - off) / server_cpu:+5.2f} % of the "
                    f"server's {server_cpu:.0f} CPU µs per /predict"
                )
        finally:
            for process, _ in servers.values():
                stop(process)


if __name__ == "__main__":
    main()
