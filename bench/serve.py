"""Benchmark the model server next to its baselines, in one run, on 127.0.0.1 only.

    .venv/bin/python bench/serve.py                  # all targets, c=1 and c=64, 3 rounds
    .venv/bin/python bench/serve.py --duration 10 --targets floor,petalops --routes predict
    .venv/bin/python bench/serve.py --model forest      # a tree ensemble (ONNX Runtime)
    .venv/bin/python bench/serve.py --model penguins    # categorical features, missing values
    .venv/bin/python bench/serve.py --targets floor,petalops --gap 60   # largest response gap
    .venv/bin/python bench/serve.py --connections 64 --pace 8000        # the tail at 8k req/s
    .venv/bin/python bench/serve.py --targets petalops,baseline --baseline . \
        --baseline-set serve.log_predictions=false      # what one setting costs, in one run

Targets, each on uvicorn + uvloop + httptools with ``--workers`` processes:
  floor     a raw ASGI app answering a constant (the cost of Python HTTP itself)
  fastapi   FastAPI + a pydantic body + scikit-learn ``predict`` (the typical server), of
            the same model (``--model``: iris, forest or penguins; `bench.apps.models`)
  petalops  ``petalops serve`` as shipped: metrics, request log and prediction log on
  baseline  the same ``petalops serve`` from another checkout (``--baseline DIR``, run with
            that checkout's ``.venv``), to compare two versions of the code in one run
  granian   the floor's ASGI app on granian (``--interface asgi --loop uvloop``, HTTP/1.1,
            ``--workers`` processes) instead of uvicorn: the other HTTP core, same app
  rsgi      a raw RSGI app answering a constant on granian (bench/apps/floor_rsgi.py):
            granian's own interface, no ASGI message dicts; what a change of server
            could give at best. Both need granian (in the dev extra).

Routes (``--routes``): predict (``/predict``), v1 (``/v1/predict``, named features),
kserve (KServe v1 ``/v1/models/<name>:predict``), v2 (OIP ``/v2/models/<name>/infer``),
inputs and instances (MLflow ``/invocations`` with ``{"inputs": ...}`` or
``{"instances": ...}``), split (``/invocations`` with ``dataframe_split``).

Load comes from wrk (``apt-get install wrk``), bounded by ``--duration``. Prints req/s,
p50/p99 latency and the server's CPU time per request (all its processes, from /proc,
counted until they are idle again: the spool loader's rows of a run are that run's), then
each figure's share of the floor's in the same run. ``--gap SECONDS`` instead runs
``/predict`` (and the floor) for that long at the largest ``--connections`` and prints the
largest gap between two consecutive responses (a GC pause or any other stall of a worker
shows up there, where a percentile hides it), timed in wrk's Lua with clock_gettime. The
servers' output goes to /dev/shm (``--log-dir`` elsewhere): a request log written to a
disk file is written back by the kernel in batches every ~30 s, which on 2 cores showed
as 20 to 37 ms gaps in every 60 s run (the disk's cost, not the server's).
``--pace RATE`` offers about RATE requests a second (wrk's ``delay`` between a connection's
requests) instead of saturating: with c connections in a closed loop, a saturated server's
median is c / its req/s, so at c=64 the p99 of two servers at different capacities mostly
shows the capacities; paced below both, it shows the servers' own tails.

``--close`` sends each request on a connection of its own (``Connection: close``), as a
client without keep-alive does. With more than one connection and worker, each cell also
prints how many of wrk's connections each worker held halfway through (``split 32/32``,
from ``ss``): a closed loop's p99 is the most loaded worker's.

``--pin`` runs each target's one worker alone on core 0 and everything else (the spool
loader, the control room's builder, wrk) on core 1: on a machine others share, where the
same cell moves by a fifth from one run to the next, the worker's CPU a request (``cpu``
less the spool loader's share) is then the steadiest figure an A/B has (``--targets
petalops,baseline --pin``). Needs 2 cores and taskset (util-linux); the granian targets
are not pinned.
Never asserts on time: figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.apps.models import MODELS, features, prepare_project, project, row  # noqa: E402

ROUTES: dict[str, tuple[str, object]] = {}


def routes_for(model: str) -> dict[str, tuple[str, object]]:
    """The request of each route for ``model``: one row, by position, by name, as OIP v2."""
    values, names = row(model), features(model)
    if model == "penguins":
        tensors = [
            {
                "name": name,
                "shape": [1, 1],
                "datatype": "BYTES" if isinstance(v, str) else "FP64",
                "data": [v],
            }
            for name, v in zip(names, values, strict=True)
        ]
    else:
        tensors = [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": values}]
    name = project(model)
    return {
        "predict": ("/predict", {"features": values}),
        "v1": ("/v1/predict", dict(zip(names, values, strict=True))),
        "kserve": (f"/v1/models/{name}:predict", {"instances": [values]}),
        "v2": (f"/v2/models/{name}/infer", {"inputs": tensors}),
        "inputs": ("/invocations", {"inputs": [values]}),
        "instances": ("/invocations", {"instances": [values]}),
        "split": ("/invocations", {"dataframe_split": {"columns": names, "data": [values]}}),
    }


def route_label(route: str) -> str:
    """The route's path, with the body's kind when several routes share the path."""
    path = ROUTES[route][0]
    shared = sum(1 for other, _ in ROUTES.values() if other == path) > 1
    return f"{path} {route}" if shared else path


CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    target: str
    route: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and all its descendants (Linux /proc)."""
    return sum(tree_cpu_roles(pid).values())


def tree_cpu_roles(pid: int) -> dict[str, float]:
    """`tree_cpu_seconds` by role: the prediction-spool loader apart from the rest."""
    roles: dict[str, float] = {}
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{current}/cmdline").read_bytes()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError):
            continue
        role = "loader" if b"petalops.monitoring.spool" in command else "server"
        roles[role] = roles.get(role, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
        pending.extend(int(c) for c in children)
    return roles


def settle(pid: int, quiet: float = 0.01, limit: float = 20.0) -> dict[str, float]:
    """Wait until the server's processes are idle (under ``quiet`` CPU seconds in 0.25 s,
    at most ``limit`` seconds), and return their CPU times then. The spool loader runs
    behind the workers: what it still has to load when wrk stops is this cell's work, and
    left running it would take the next cell's CPU (whichever target that is)."""
    before = tree_cpu_roles(pid)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.25)
        after = tree_cpu_roles(pid)
        if sum(after.values()) - sum(before.values()) < quiet:
            return after
        before = after
    return before


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout} s")


def start(
    target: str,
    port: int,
    workers: int,
    home: Path,
    overrides: list[str],
    workdir: Path,
    baseline: Path | None = None,
    model: str = "iris",
    log_dir: Path | None = None,
    pin: bool = False,
) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PETALOPS_BENCH_MODEL": model}
    python = sys.executable
    if target == "baseline":
        if baseline is None:
            raise SystemExit("the baseline target needs --baseline DIR (a checkout with .venv)")
        python = str(baseline / ".venv" / "bin" / "python")
        env["PYTHONPATH"] = str(baseline / "src")
        # A home of its own: the spool, the elections and the reload trigger live in it.
        own = workdir / "baseline-home"
        if not own.exists():
            shutil.copytree(home, own, ignore=shutil.ignore_patterns("serve", "spool"))
        home = own
    # What both HTTP cores are given alike: the address, the workers, uvloop.
    common = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    common += ["--loop", "uvloop"]
    uvicorn = [python, "-m", "uvicorn", *common, "--http", "httptools", "--no-access-log"]
    uvicorn += ["--log-level", "warning"]
    granian = [python, "-m", "granian", *common, "--http", "1", "--no-ws"]
    granian += ["--log-level", "warning"]
    if target == "floor":
        command, ready = [*uvicorn, "bench.apps.floor:app"], "/"
    elif target in ("granian", "rsgi"):
        if importlib.util.find_spec("granian") is None:
            raise SystemExit(f"the {target} target needs granian: .venv/bin/pip install granian")
        interface, app = (
            ("asgi", "bench.apps.floor:app")
            if target == "granian"
            else ("rsgi", "bench.apps.floor_rsgi:app")
        )
        command, ready = [*granian, "--interface", interface, app], "/"
    elif target == "fastapi":
        command, ready = [*uvicorn, "bench.apps.fastapi_sklearn:app"], "/docs"
    else:
        env["PETALOPS_HOME"] = str(home)
        # A fresh prediction log per run: inserts slow down as the table grows.
        env["PETALOPS_MONITOR__DB_URL"] = f"sqlite:///{workdir / f'monitor-{target}.db'}"
        command = [
            python,
            "-m",
            "petalops",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        for override in overrides:
            command += ["--set", override]
        ready = "/readyz"
    # The servers' output (petalops' request log: ~2.5 MB/s at 10k req/s) goes to memory
    # where the machine has a tmpfs: on a disk, the kernel writes a file's dirty pages back
    # 30 s after they were written (vm.dirty_expire_centisecs), and on 2 cores each batch
    # stalled the workers 20 to 37 ms, every ~31 s, a gap the floor (no log) never shows.
    # That is the disk's cost of a log, not the server's: ``--log-dir`` puts it elsewhere.
    logs = log_dir if log_dir is not None else workdir
    log = open(logs / f"{target}-{port}.log", "wb")  # noqa: SIM115 - lives with the server
    # petalops serve reads the project's petalops.yaml where it was trained
    cwd = home.parent if target in ("petalops", "baseline") else workdir
    if pin:
        command = ["taskset", "-c", "1", *command]  # all but the worker (below): core 1
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=log, stderr=log, start_new_session=True
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}{ready}", process)
    except Exception:
        stop(process)
        raise
    if pin:
        # One worker runs in the server's own process (uvicorn's and petalops serve's);
        # every thread it has now, and so every one it starts, goes to core 0.
        for thread in os.listdir(f"/proc/{process.pid}/task"):
            os.sched_setaffinity(int(thread), {0})
    return process, ready


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(match[1]) * _UNITS[match[2]] if match else float("nan")


# Appended to the request script by --gap: every response's completion time, from
# clock_gettime through LuaJIT's FFI (wrk's Lua has no sub-second clock of its own); the
# largest gap between consecutive responses (one wrk thread sees every connection's) and
# the number of gaps over 20 ms are printed at the end.
GAP_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } petalops_timespec;
int clock_gettime(int clock, petalops_timespec *t);
]]
local now = ffi.new("petalops_timespec")
local last = nil
local started = nil
largest, over, at = 0, 0, 0
local threads = {}
setup = function(thread) table.insert(threads, thread) end
response = function(status, headers, body)
  ffi.C.clock_gettime(1, now)
  local t = tonumber(now.tv_sec) + tonumber(now.tv_nsec) * 1e-9
  if last ~= nil then
    local gap = t - last
    if gap > largest then largest = gap; at = t - started end
    if gap > 0.020 then over = over + 1 end
  else
    started = t
  end
  last = t
end
done = function(summary, latency, requests)
  for _, thread in ipairs(threads) do
    io.write(string.format("largest gap: %.3f ms at %.1f s; gaps over 20 ms: %d\n",
      thread:get("largest") * 1000, thread:get("at"), thread:get("over")))
  end
end
"""


def wrk(
    url: str,
    body: dict[str, object],
    connections: int,
    seconds: float,
    workdir: Path,
    gap: bool = False,
    pace: float | None = None,
    pin: bool = False,
    close: bool = False,
    split: list[int] | None = None,
) -> tuple[float, float, float, int, str]:
    """req/s, p50 ms, p99 ms, errors and (with ``gap``) wrk's gap line. With ``pace``
    (requests a second), each connection waits connections/pace seconds before each
    request (wrk's ``delay``): the load is about ``pace``, not as much as the server takes.
    With ``close``, each request asks for its connection to be closed after the answer (a
    client without keep-alive). Into ``split`` goes, halfway through, how many of the
    connections each process listening on the URL's port holds (`connection_split`)."""
    script = workdir / "post.lua"
    paced = (
        "" if pace is None else f"delay = function() return {connections / pace * 1000:.3f} end\n"
    )
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{json.dumps(body)}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        + ('wrk.headers["Connection"] = "close"\n' if close else "")
        + paced
        + (GAP_LUA if gap else "")
    )
    sampler = None
    if split is not None:
        port = int(url.split(":")[2].split("/")[0])
        sampler = threading.Timer(seconds / 2, lambda: split.extend(connection_split(port)))
        sampler.start()
    command = [
        *(["taskset", "-c", "1"] if pin else []),
        "wrk",
        "-t",
        "1",
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(seconds))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30).stdout
    if sampler is not None:
        sampler.join()
    if os.environ.get("BENCH_DEBUG"):
        print(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1])  # type: ignore[index]
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?(\d+)"):
        found = re.search(pattern, out)
        errors += int(found[1]) if found else 0
    gap_line = re.search(r"^largest gap: .*$", out, re.M)
    return rps, p50, p99, errors, gap_line[0] if gap_line else ""


def connection_split(port: int) -> list[int]:
    """How many established connections to ``port`` each server process holds, largest
    first (``ss`` from iproute2; empty without it). With several workers on one listening
    socket the kernel gives a new connection to whichever worker accepts first; a worker
    holding more of a closed loop's connections answers each of them later, and the run's
    p99 is that worker's."""
    if shutil.which("ss") is None:
        return []
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    per_pid: dict[str, int] = {}
    for pid in re.findall(r"pid=(\d+)", out):
        per_pid[pid] = per_pid.get(pid, 0) + 1
    return sorted(per_pid.values(), reverse=True)


def split_text(split: list[int]) -> str:
    return f"  split {'/'.join(map(str, split))}" if len(split) > 1 else ""


def measure_all(
    targets: list[str],
    routes: list[str],
    connections: list[int],
    args: argparse.Namespace,
    home: Path,
    workdir: Path,
) -> list[Result]:
    """All servers up at once (idle ones cost nothing); runs interleaved, in rounds.

    On a shared machine the background load drifts over minutes, so each cell is measured
    once per round, the targets taking turns (in an order that rotates from round to
    round), and the median round is reported.
    """
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    rounds: dict[tuple[str, str, int], list[Result]] = {}
    try:
        for target in targets:
            port = free_port()
            servers[target] = (
                start(
                    target,
                    port,
                    args.workers,
                    home,
                    [*(args.set or []), *(args.baseline_set or [])]
                    if target == "baseline"
                    else args.set or [],
                    workdir,
                    args.baseline,
                    args.model,
                    args.log_dir,
                    args.pin and target not in ("granian", "rsgi"),
                )[0],
                port,
            )
        cells = [
            (target, route)
            for target in targets
            for route in (routes if target in ("petalops", "baseline") else ["predict"])
        ]
        for target, route in cells:
            path, body = ROUTES[route]
            url = f"http://127.0.0.1:{servers[target][1]}{path}"
            wrk(url, body, 8, args.warmup, workdir, pin=args.pin)
        if args.gap:
            c = max(connections)
            for target, route in cells:
                process, port = servers[target]
                path, body = ROUTES[route]
                cpu_before = tree_cpu_seconds(process.pid)
                split: list[int] = []
                rps, p50, p99, errors, gap = wrk(
                    f"http://127.0.0.1:{port}{path}",
                    body,
                    c,
                    args.gap,
                    workdir,
                    True,
                    pin=args.pin,
                    close=args.close,
                    split=split,
                )
                cpu_us = (tree_cpu_seconds(process.pid) - cpu_before) / max(1.0, rps * args.gap)
                label = route_label(route)
                print(
                    f"  {target:9} {label:26} c={c:<3} {args.gap:g} s: {rps:9.0f} req/s  "
                    f"p99 {p99:7.2f} ms  cpu {cpu_us * 1e6:6.0f} µs/req  errors {errors}  {gap}"
                    + split_text(split),
                    flush=True,
                )
            return []
        for number in range(1, args.rounds + 1):
            print(f"round {number}/{args.rounds}", flush=True)
            # Each round starts one target later: where a target runs in a round moved its
            # figures by up to a third here (the machine drifts over minutes), so in an
            # A/B every target runs early in some rounds and late in others.
            turn = (number - 1) % len(targets)
            order = [*targets[turn:], *targets[:turn]]
            ordered = sorted(cells, key=lambda cell: order.index(cell[0]))
            for c in connections:
                for target, route in ordered:
                    process, port = servers[target]
                    path, body = ROUTES[route]
                    cpu_before = tree_cpu_roles(process.pid)
                    split = []
                    rps, p50, p99, errors, _ = wrk(
                        f"http://127.0.0.1:{port}{path}",
                        body,
                        c,
                        args.duration,
                        workdir,
                        pace=args.pace,
                        pin=args.pin,
                        close=args.close,
                        split=split if c > 1 else None,
                    )
                    cpu_after = settle(process.pid)
                    answered = max(1.0, rps * args.duration)
                    cpu_us = (sum(cpu_after.values()) - sum(cpu_before.values())) / answered * 1e6
                    loader = cpu_after.get("loader", 0.0) - cpu_before.get("loader", 0.0)
                    loader_us = loader / answered * 1e6
                    label = route_label(route)
                    result = Result(target, label, c, rps, p50, p99, errors, cpu_us)
                    rounds.setdefault((target, label, c), []).append(result)
                    print(
                        f"  {target:9} {label:26} c={c:<3} {rps:9.0f} req/s  p50 {p50:7.3f} ms  "
                        f"p99 {p99:7.2f} ms  cpu {cpu_us:6.0f} µs/req  errors {errors}"
                        + (f"  (spool loader {loader_us:.0f} µs of it)" if loader_us else "")
                        + split_text(split),
                        flush=True,
                    )
    finally:
        for process, _ in servers.values():
            stop(process)
    return [sorted(runs, key=lambda r: r.rps)[len(runs) // 2] for runs in rounds.values()]


def trained_home(workdir: Path, model: str = "iris") -> Path:
    """A registry holding the trained model (trained once into the work directory)."""
    home = workdir / ".petalops"
    env = {**os.environ, "PETALOPS_HOME": str(home)}
    overrides = [part for o in prepare_project(model, workdir) for part in ("--set", o)]
    subprocess.run(
        [sys.executable, "-m", "petalops", "train", *overrides],
        env=env,
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    return home


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per route")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", default="1,64")
    parser.add_argument("--targets", default="floor,fastapi,petalops")
    parser.add_argument("--routes", default="predict,v1,kserve,v2,inputs,instances")
    parser.add_argument(
        "--gap",
        type=float,
        help="instead: /predict for this many seconds, printing the largest response gap",
    )
    parser.add_argument(
        "--pace",
        type=float,
        help="offer about this many requests a second instead of as many as the server "
        "takes (the tail at a load every target can carry, not the queue of a saturated one)",
    )
    parser.add_argument("--model", choices=MODELS, default="iris", help="see bench.apps.models")
    parser.add_argument("--home", type=Path, help="an existing trained .petalops to serve")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (with its .venv) served as the 'baseline' target",
    )
    parser.add_argument(
        "--set",
        action="append",
        help="petalops setting, e.g. serve.log_predictions=false (repeatable)",
    )
    parser.add_argument(
        "--baseline-set",
        action="append",
        help="a setting for the baseline target only (after --set), to A/B one setting "
        "in one run: --baseline <this checkout> --baseline-set serve.log_predictions=false",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="one worker alone on core 0, the rest and wrk on core 1 (steadier A/B figures)",
    )
    parser.add_argument(
        "--close",
        action="store_true",
        help="each request on a connection of its own (Connection: close), as a client"
        " without keep-alive sends them",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--log-dir",
        type=Path,
        help="where the servers' output goes (default: a directory in /dev/shm where there"
        " is one, else the work directory; a disk's writeback shows as response gaps)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install -y wrk")
    if args.pin:
        if "--workers" in sys.argv[1:] and args.workers != 1:
            parser.error("--pin runs one worker a target; leave out --workers or give 1")
        if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
            parser.error("--pin needs 2 cores and taskset (apt-get install -y util-linux)")
        args.workers = 1
    connections = [int(c) for c in args.connections.split(",")]
    routes = ["predict"] if args.gap else args.routes.split(",")
    ROUTES.update(routes_for(args.model))
    workdir = Path(tempfile.mkdtemp(prefix="petalops-bench-"))
    if args.log_dir is None and os.access("/dev/shm", os.W_OK):
        args.log_dir = Path(tempfile.mkdtemp(prefix="petalops-bench-logs-", dir="/dev/shm"))
        cleanup_logs = True
    else:
        cleanup_logs = False
    try:
        home = args.home.resolve() if args.home else trained_home(workdir, args.model)
        load = os.getloadavg()
        print(
            f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
            f"on {os.cpu_count()} cores; {args.workers} workers; {args.duration:g} s per run; "
            f"model {args.model}"
        )
        results = measure_all(args.targets.split(","), routes, connections, args, home, workdir)
        if args.gap:
            return
        print("\nmedian round:")
        for r in results:
            print(
                f"  {r.target:9} {r.route:26} c={r.connections:<3} {r.rps:9.0f} req/s  "
                f"p50 {r.p50_ms:7.3f} ms  p99 {r.p99_ms:7.2f} ms  cpu {r.cpu_us:6.0f} µs/req  "
                f"errors {r.errors}"
            )
        floor = {r.connections: r for r in results if r.target == "floor"}
        print("\nagainst the floor (same run): req/s share, p99 ratio, CPU µs/req over it")
        for r in results:
            base = floor.get(r.connections)
            if r.target != "floor" and base is not None:
                print(
                    f"  {r.target:9} {r.route:26} c={r.connections:<3} "
                    f"{r.rps / base.rps:.2f} x req/s  {r.p99_ms / base.p99_ms:.2f} x p99  "
                    f"+{r.cpu_us - base.cpu_us:.0f} µs/req"
                )
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        if args.json:
            args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if cleanup_logs:
            shutil.rmtree(args.log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
