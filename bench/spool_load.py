"""What the spool loader costs per prediction row, with and without the collector paused.

    .venv/bin/python bench/spool_load.py                 # 200,000 rows in 2,000-row files
    .venv/bin/python bench/spool_load.py --rows 500000 --file-rows 500
    .venv/bin/python bench/spool_load.py --baseline ../other-checkout --rounds 5
    .venv/bin/python bench/spool_load.py --request-ids uuid --prefill 1000000
    .venv/bin/python bench/spool_load.py --instructions --rows 20000 --baseline ../other

``--request-ids uuid`` gives every request a random UUID, as a gateway's ``X-Request-ID``
(which `petalops serve` takes) does, instead of the worker's own counter ids; ``--prefill
N`` puts N such rows in the store first, as a store that has been serving for a while
holds: both move where the inserts land in the request-id index.

Every phase loads the same kind of spool files (answer lines as `SpoolWriter` writes them
for ``/predict``: one row each) with a real `SpoolLoader` into a fresh SQLite store (WAL,
the embedded default), in its own process, and prints the loader's CPU time per row:

* shipped     the loader as it is: the cyclic collector paused while a chunk is parsed,
              converted and inserted;
* baseline    (with ``--baseline DIR``) the loader of another checkout, on the same files;
* gc on       the same files, the collector left on through the chunk (the loader before);
* 2 MiB cache the loader with SQLite's default page cache instead of its own
              (``LOADER_CACHE_MIB``): what the bigger cache saves once the request-id
              index outgrows 2 MiB (``--request-ids uuid --prefill 1000000``).

``--instructions`` counts instead of timing: each phase's load runs under callgrind (its
``load_once`` inside ``operator.call``, the one C function collected), once, and prints CPU
instructions per row, a figure the machine's load does not move (use fewer ``--rows``:
callgrind runs ~50x slower). Needs valgrind.

The loader runs beside the workers on the same cores: each µs it spends a row is one the
workers do not have (bench/serve.py prints it as "spool loader … of it"). Never asserts.
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import operator
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

PHASES = {"shipped": True, "gc on": False, "2 MiB cache": True}
TOGGLE = "_operator_call"  # the C function behind operator.call: callgrind counts only it


def request_ids(kind: str) -> Any:
    """Counter ids as serving.http.new_request_id makes them, or a gateway's UUIDs."""
    if kind == "uuid":
        while True:
            yield str(uuid.uuid4())
    prefix = os.urandom(4).hex()
    number = 0
    while True:
        number += 1
        yield f"{prefix}-{number:x}"


def prefill(path: Path, rows: int, ids: str, out: Any) -> None:
    """A store holding ``rows`` earlier predictions (written with sqlite3 directly: fast)."""
    from petalops.monitoring.store import MonitorStore

    MonitorStore(f"sqlite:///{path}").close()  # the tables, by the migrations
    start = time.time() - 86_400.0
    make = request_ids(ids)
    with sqlite3.connect(path) as db:
        for first in range(0, rows, 10_000):
            db.executemany(
                "INSERT INTO predictions (request_id, row, ts, model_name, model_version,"
                " variant, route, status, latency_ms, features, prediction, class_name,"
                " probabilities) VALUES (?, 0, ?, 'iris', '1', 'champion', '/predict', 200,"
                " 0.412, '[5.1,3.5,1.4,0.2]', 0, 'setosa', '[0.98,0.02,0.0]')",
                [(next(make), start + i * 1e-3) for i in range(first, min(rows, first + 10_000))],
            )
    out.send(True)


def write_files(directory: Path, rows: int, file_rows: int, ids: str) -> None:
    """Spool files as a worker writes them: one answer line per /predict request."""
    import orjson

    from petalops.monitoring.record import answer_line
    from petalops.monitoring.spool import READY

    make = request_ids(ids)
    now = time.time()
    directory.mkdir(parents=True)
    for start in range(0, rows, file_rows):
        lines = []
        for i in range(start, min(rows, start + file_rows)):
            request_id = next(make)
            line = answer_line(
                request_id,
                now + i * 1e-4,
                "iris",
                "1",
                "champion",
                "/predict",
                200,
                0.412,
                [[5.1, 3.5, 1.4, 0.2]],
                [0],
                ["setosa"],
                [[0.9783998870533394, 0.02160005785943663, 5.508722396115099e-08]],
                None,
            )
            lines.append(orjson.dumps(line))
        (directory / f"{start:012d}-bench{READY}").write_bytes(b"\n".join(lines) + b"\n")


def phase(
    name: str,
    rows: int,
    file_rows: int,
    ids: str,
    template: str | None,
    out: Any,
    src: str | None = None,
) -> None:
    if src is not None:  # another checkout's loader (nothing of petalops is imported yet)
        sys.path.insert(0, src)
    pause = PHASES.get(name, True)
    from petalops.monitoring import spool as spool_module
    from petalops.monitoring.spool import SpoolLoader
    from petalops.monitoring.store import MonitorStore

    with tempfile.TemporaryDirectory(prefix="spool-load-") as work:
        spool = Path(work) / "spool"
        write_files(spool, rows, file_rows, ids)
        if template is not None:
            shutil.copyfile(template, f"{work}/monitor.db")
        url = f"sqlite:///{work}/monitor.db"
        # The store as the loader process opens it (a baseline without loader_store: plain).
        opener = getattr(spool_module, "loader_store", MonitorStore)
        store = MonitorStore(url) if name == "2 MiB cache" else opener(url)
        loader = SpoolLoader(spool, store, retention_days=None)
        if not pause:  # the loader before the cut: the collector on through the chunk
            loader._load_chunk = loader._load_chunk_unpaused  # type: ignore[method-assign]
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        loaded = operator.call(loader.load_once)  # the call callgrind counts (TOGGLE)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        store.close()
    if loaded != rows:
        raise SystemExit(f"{name}: loaded {loaded} of {rows} rows")
    out.send((cpu / rows * 1e6, wall / rows * 1e6))


class _Print:
    """A stand-in for a pipe's end: ``--inner`` prints what a phase sends."""

    def send(self, value: Any) -> None:
        print("sent", *value, flush=True)


def count(args: argparse.Namespace, phases: list[tuple[str, str | None]]) -> None:
    """Each phase once under callgrind: CPU instructions per row."""
    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind (apt-get install valgrind)")
    print(f"{'phase':<14} {'instructions / row':>19}")
    for name, src in phases:
        with tempfile.TemporaryDirectory(prefix="spool-count-") as work:
            out = Path(work) / "callgrind.out"
            command = [
                "valgrind",
                "--tool=callgrind",
                f"--toggle-collect={TOGGLE}",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--inner",
                name,
                "--rows",
                str(args.rows),
                "--file-rows",
                str(args.file_rows),
                "--request-ids",
                args.request_ids,
            ]
            if src is not None:
                command += ["--inner-src", src]
            if args.prefill:
                command += ["--prefill", str(args.prefill)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                sys.exit(f"{name}: the counted run failed:\n{result.stderr[-4000:]}")
            found = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
            if found is None:
                sys.exit(f"{name}: callgrind counted nothing (no {TOGGLE} call collected)")
            total = int(found.group(1))
        print(f"{name:<14} {total / args.rows:>19,.0f}", flush=True)


def inner(args: argparse.Namespace) -> None:
    """One phase in this process (under callgrind, from :func:`count`)."""
    if args.inner_src is not None:  # before the prefill imports petalops
        sys.path.insert(0, args.inner_src)
    template = None
    if args.prefill:
        scratch = tempfile.mkdtemp(prefix="spool-prefill-")
        template = str(Path(scratch) / "monitor.db")
        prefill(Path(template), args.prefill, args.request_ids, _Print())
    phase(args.inner, args.rows, args.file_rows, args.request_ids, template, _Print())
    if template is not None:
        shutil.rmtree(Path(template).parent, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--file-rows", type=int, default=2_000, help="rows per spool file")
    parser.add_argument(
        "--baseline", type=Path, help="another checkout: its loader runs as the phase 'baseline'"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument(
        "--request-ids",
        choices=("counter", "uuid"),
        default="counter",
        help="the workers' own counter ids, or random UUIDs as a gateway's X-Request-ID",
    )
    parser.add_argument(
        "--prefill", type=int, default=0, help="rows already in the store before each load"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count CPU instructions per row under callgrind (once a phase) instead of timing",
    )
    parser.add_argument("--inner", help=argparse.SUPPRESS)  # one phase, in this process
    parser.add_argument("--inner-src", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args)
        return
    print(
        f"{args.rows:,} rows in {args.file_rows:,}-row spool files, {args.request_ids} request"
        f" ids, SQLite (WAL) holding {args.prefill:,} rows before"
    )
    phases: list[tuple[str, str | None]] = [(name, None) for name in PHASES]
    if args.baseline is not None:
        phases.insert(1, ("baseline", str(args.baseline.resolve() / "src")))
    if args.instructions:
        count(args, phases)
        return
    print(f"{'round':<6} {'phase':<14} {'CPU µs/row':>11} {'wall µs/row':>12}")
    results: dict[str, list[float]] = {}
    context = mp.get_context("spawn")
    scratch = tempfile.TemporaryDirectory(prefix="spool-prefill-")
    template = None
    if args.prefill:
        template = str(Path(scratch.name) / "monitor.db")
        receive, send = context.Pipe(duplex=False)
        process = context.Process(
            target=prefill, args=(Path(template), args.prefill, args.request_ids, send)
        )
        process.start()
        receive.recv()
        process.join()
    # The phases take turns, round after round: a shared machine's load drifts over minutes.
    for number in range(1, args.rounds + 1):
        for name, src in phases:
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=phase,
                args=(name, args.rows, args.file_rows, args.request_ids, template, send, src),
            )
            process.start()
            cpu, wall = receive.recv()
            process.join()
            results.setdefault(name, []).append(cpu)
            print(f"{number:<6} {name:<14} {cpu:>11.2f} {wall:>12.2f}", flush=True)
    scratch.cleanup()
    median = {name: statistics.median(cpus) for name, cpus in results.items()}
    print("median: " + ", ".join(f"{name} {cpu:.2f}" for name, cpu in median.items()) + " µs/row")
    print(f"collector paused: {median['gc on'] - median['shipped']:.2f} µs less CPU a row")
    saved = median["2 MiB cache"] - median["shipped"]
    print(f"loader page cache: {saved:.2f} µs less CPU a row than SQLite's 2 MiB")
    if "baseline" in median:
        less = median["baseline"] - median["shipped"]
        print(f"against the baseline: {less:.2f} µs less CPU a row")


if __name__ == "__main__":
    main()
