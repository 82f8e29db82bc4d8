"""Does the prediction log keep up with the serving goal (~10,000 predictions/s) without drops?

Each phase runs in its own process (so peak memory is its own) against a fresh SQLite
monitoring store in WAL mode, the embedded default:

* baseline  the naive way: one INSERT and commit per prediction, on the caller's thread;
* logger    PredictionLogger fed at a paced --rate (rows/s) for --seconds, as a server
            worker would: records built like the server's, the logger thread in-process;
* burst     PredictionLogger fed as fast as one thread can, to show the headroom;
* 2 workers two processes, each with its own logger, share one SQLite file (WAL, busy
            timeout) at --rate / 2 each: the layout of a server run without the spool;
* spool     two processes, each with a SpoolWriter at --rate / 2, and one SpoolLoader
            process loading their files into the SQLite file: the `petalops serve` layout.

"worker CPU µs/row" is the CPU time of the whole feeding process (the caller and the
logger's thread) per row offered: in a server worker all of it is taken under the GIL that
the requests need.

Prints rows/s, drops, the caller's cost per call and peak RSS. Never asserts on time.

    .venv/bin/python bench/prediction_log.py [--rate 10000] [--seconds 5]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

FEATURES = [5.1, 3.5, 1.4, 0.2]
PROBAS = [0.97, 0.025, 0.005]


def make_record(i: int, now: float) -> dict[str, Any]:
    return {
        "request_id": f"{i:032x}",
        "row": 0,
        "ts": now,
        "model_name": "iris",
        "model_version": "1",
        "variant": "champion",
        "route": "/v1/predict",
        "status": 200,
        "latency_ms": 0.4,
        "features": FEATURES,
        "prediction": 0,
        "class_name": "setosa",
        "probabilities": PROBAS,
        "reference_prediction": None,
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def baseline(url: str, seconds: float, rate: int) -> dict[str, Any]:
    """One INSERT + commit per prediction on the caller's thread (blocks the request)."""
    from petalops.monitoring.store import MonitorStore, predictions, to_row

    store = MonitorStore(url)
    start_rss = peak_rss_mb()
    offered = int(seconds * rate)
    cpu_start = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    done = 0
    with store.engine.connect() as conn:
        while done < offered and time.perf_counter() < deadline:
            now = time.time()
            conn.execute(predictions.insert(), [to_row(make_record(done, now), now)])
            conn.commit()
            done += 1
    elapsed = time.perf_counter() - started
    written = store.count()
    store.close()
    return {
        "phase": "baseline: INSERT+commit per row",
        "offered": offered,
        "logged": done,
        "written": written,
        "dropped": offered - done,  # never reached: the caller could not keep up
        "elapsed_s": elapsed,
        "rows_per_s": written / elapsed,
        "caller_us": elapsed / max(done, 1) * 1e6,
        "cpu_us": (time.process_time() - cpu_start) / max(done, 1) * 1e6,
        "start_rss_mb": start_rss,
        "peak_rss_mb": peak_rss_mb(),
    }


def logger_phase(
    url: str, seconds: float, rate: int, paced: bool, spool: Path | None = None
) -> dict[str, Any]:
    from petalops.config import MonitorSettings
    from petalops.monitoring.logger import PredictionLogger
    from petalops.monitoring.spool import SpoolWriter
    from petalops.monitoring.store import MonitorStore

    defaults = MonitorSettings()
    store = MonitorStore(url)
    start_rss = peak_rss_mb()
    cpu_start = time.process_time()
    logger: Any
    if spool is None:
        logger = PredictionLogger(
            store,
            queue_size=defaults.queue_size,
            flush_rows=defaults.flush_rows,
            flush_seconds=defaults.flush_seconds,
        )
    else:
        logger = SpoolWriter(
            spool, store, queue_size=defaults.queue_size, flush_seconds=defaults.flush_seconds
        )
    offered = int(seconds * rate)
    tick = 0.01  # a server sees requests continuously; feed them in 10 ms slices
    per_tick = max(int(rate * tick), 1)
    caller = 0.0
    max_queue = 0
    started = time.perf_counter()
    i = 0
    while i < offered:
        slice_start = time.perf_counter()
        now = time.time()
        for _ in range(min(per_tick if paced else 10_000, offered - i)):
            record = make_record(i, now)
            t0 = time.perf_counter()
            logger.log(record)
            caller += time.perf_counter() - t0
            i += 1
        max_queue = max(max_queue, logger.pending)
        if paced:
            target = started + i / rate
            pause = target - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        elif time.perf_counter() - slice_start < 0:  # pragma: no cover
            break
    fed = time.perf_counter() - started
    if spool is not None:
        logger.flush(timeout=120.0)  # until the loader has committed this worker's files
    logger.close()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_start
    written = store.count()
    store.close()
    name = "PredictionLogger" if spool is None else "SpoolWriter + loader"
    return {
        "phase": f"{name}, {'paced' if paced else 'burst'}",
        "offered": offered,
        "logged": offered - logger.dropped,
        "written": written,
        "dropped": logger.dropped,
        "elapsed_s": elapsed,
        "feed_s": fed,
        "offered_per_s": offered / fed,
        "rows_per_s": written / elapsed,
        "caller_us": caller / max(offered, 1) * 1e6,
        "cpu_us": cpu / max(offered, 1) * 1e6,
        "max_queue": max_queue,
        "start_rss_mb": start_rss,
        "peak_rss_mb": peak_rss_mb(),
    }


def _child(kind: str, url: str, seconds: float, rate: int, out: Any, spool: Path) -> None:
    if kind == "baseline":
        out.put(baseline(url, seconds, rate))
    else:
        out.put(
            logger_phase(
                url, seconds, rate, paced=kind != "burst", spool=spool if kind == "spool" else None
            )
        )


def _loader(url: str, spool: Path, stop: Any) -> None:
    from petalops.monitoring.spool import SpoolLoader
    from petalops.monitoring.store import MonitorStore

    store = MonitorStore(url)
    SpoolLoader(spool, store).run(stop)
    store.close()


def run(kind: str, seconds: float, rate: int, workdir: Path, processes: int = 1) -> dict[str, Any]:
    """One phase; with ``processes`` > 1, that many workers share one database file and
    each is offered ``rate / processes`` rows/s (a server with several workers)."""
    url = f"sqlite:///{workdir / f'{kind}-{processes}.db'}"
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    spool = workdir / f"spool-{processes}"
    stop = ctx.Event()
    loader = ctx.Process(target=_loader, args=(url, spool, stop)) if kind == "spool" else None
    if loader is not None:
        loader.start()
    procs = [
        ctx.Process(target=_child, args=(kind, url, seconds, rate // processes, out, spool))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    parts: list[dict[str, Any]] = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    if loader is not None:
        stop.set()
        loader.join(60)
    if processes == 1:
        return parts[0]
    elapsed = max(p["elapsed_s"] for p in parts)
    written = max(p["written"] for p in parts)  # each counted the shared table at its end
    return {
        "phase": f"{parts[0]['phase']}, {processes} workers",
        "offered": sum(p["offered"] for p in parts),
        "written": written,
        "dropped": sum(p["dropped"] for p in parts),
        "elapsed_s": elapsed,
        "feed_s": max(p["feed_s"] for p in parts),
        "offered_per_s": sum(p["offered_per_s"] for p in parts),
        "rows_per_s": written / elapsed,
        "caller_us": sum(p["caller_us"] for p in parts) / len(parts),
        "cpu_us": sum(p["cpu_us"] for p in parts) / len(parts),
        "max_queue": max(p["max_queue"] for p in parts),
        "start_rss_mb": max(p["start_rss_mb"] for p in parts),
        "peak_rss_mb": max(p["peak_rss_mb"] for p in parts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=10_000, help="offered predictions/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per phase")
    parser.add_argument("--burst-rows", type=int, default=100_000, help="rows in the burst phase")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="petalops-bench-") as tmp:
        workdir = Path(tmp)
        results = [
            run("baseline", args.seconds, args.rate, workdir),
            run("paced", args.seconds, args.rate, workdir),
            run("burst", args.burst_rows / 1e9, int(1e9), workdir),
            run("paced", args.seconds, args.rate, workdir, processes=2),
            run("spool", args.seconds, args.rate, workdir, processes=2),
        ]

    print(f"prediction log → SQLite (WAL), offered {args.rate:,} rows/s for {args.seconds:g} s")
    header = (
        f"{'phase':40} {'offered':>9} {'written':>9} {'dropped*':>8} {'rows/s':>9} "
        f"{'caller µs/row':>13} {'worker CPU µs/row':>17} {'max queue':>9} "
        f"{'RSS start→peak MB (per process)':>18}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['phase']:40} {r['offered']:>9,} {r['written']:>9,} {r['dropped']:>8,} "
            f"{r['rows_per_s']:>9,.0f} {r['caller_us']:>13.2f} {r.get('cpu_us', 0):>17.2f} "
            f"{r.get('max_queue', 0):>9,} "
            f"{r['start_rss_mb']:>8.0f} → {r['peak_rss_mb']:<7.0f}"
        )
    paced = results[1]
    print(
        "* baseline: rows it never got to insert in the time given (it blocks the caller "
        "instead of dropping)"
    )
    print()
    print(
        f"logger at {paced['offered_per_s']:,.0f} rows/s offered: {paced['dropped']} dropped, "
        f"all {paced['written']:,} rows written {paced['elapsed_s'] - paced['feed_s']:.2f} s "
        f"after the last one was logged; the caller paid {paced['caller_us']:.2f} µs per row "
        f"(baseline: {results[0]['caller_us']:.0f} µs, max {results[0]['rows_per_s']:,.0f} rows/s)"
    )


if __name__ == "__main__":
    main()
