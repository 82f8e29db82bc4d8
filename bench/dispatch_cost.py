"""CPU instructions per request on the hot routes, counted by callgrind (not timed).

    .venv/bin/python bench/dispatch_cost.py                          # this checkout
    .venv/bin/python bench/dispatch_cost.py --src /tmp/other/src     # another checkout's src/
    .venv/bin/python bench/dispatch_cost.py --requests 5000 --routes predict,v1
    .venv/bin/python bench/dispatch_cost.py --model penguins --requests 2000   # mixed types

Wall-clock figures mean little on a shared machine; instruction counts do not move with
the load. The app is built by ``create_app`` (real bundles, request log on to /dev/null)
and driven in process: a fake ASGI ``receive``/``send`` and, per route, ``--requests``
calls after a warm-up. Each route's loop runs inside ``operator.call`` so that callgrind
(``--toggle-collect`` / ``--dump-after`` on its C function) counts exactly that loop: the
figure is the dispatcher, the route, the model (``--model``: a logistic regression on Iris,
or ``penguins``: two categorical features, a missing value in the request, imputation +
one-hot + a default RandomForest in ONNX Runtime), metrics, the request log and the side
channel, without uvicorn (the cyclic GC stays on: what a request allocates, it pays for
in collections). ``log on`` rows repeat the loop with a prediction sink that drops
what it is given (the records are built, as for any sink); ``spool`` rows with the sink
`petalops serve` ships, a real ``SpoolWriter`` into a temporary directory, whose file write
(done by its thread in production) runs once at the end of the counted loop, so its cost
is in the figure too. ``http`` rows send each request as bytes through the protocol
`petalops serve` runs (uvicorn's httptools parser, request cycle and ``send``, and
`petalops.serving.protocol`) on uvloop, spool on: all a worker does but the socket system
calls. ``--keep DIR`` keeps the callgrind files for ``callgrind_annotate``. The last
column is what the cyclic collector freed in each loop, per request: objects in reference
cycles, which a worker frees only in collections (each a stall); it should read 0.

Needs valgrind (``apt-get install valgrind``) and a CPython whose libpython keeps its
symbol table. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROW = [5.1, 3.5, 1.4, 0.2]
NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROUTES: dict[str, tuple[str, Any]] = {
    "predict": ("/predict", {"features": ROW}),
    "v1": ("/v1/predict", dict(zip(NAMES, ROW, strict=True))),
    "mlflow": ("/invocations", {"dataframe_split": {"columns": NAMES, "data": [ROW]}}),
    "kserve": ("/v1/models/iris:predict", {"instances": [ROW]}),
    "inputs": ("/invocations", {"inputs": [ROW]}),
    "instances": ("/invocations", {"instances": [ROW]}),
    "oip": (
        "/v2/models/iris/infer",
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": ROW}]},
    ),
}
PENGUIN_ROW: list[Any] = ["Dream", 46.5, 17.9, 192.0, None, "female"]
PENGUIN_NAMES = [
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
]
PENGUIN_ROUTES: dict[str, tuple[str, Any]] = {
    "predict": ("/predict", {"features": PENGUIN_ROW}),
    "v1": ("/v1/predict", dict(zip(PENGUIN_NAMES, PENGUIN_ROW, strict=True))),
    "mlflow": (
        "/invocations",
        {"dataframe_split": {"columns": PENGUIN_NAMES, "data": [PENGUIN_ROW]}},
    ),
    "kserve": ("/v1/models/penguins:predict", {"instances": [PENGUIN_ROW]}),
    "oip": (
        "/v2/models/penguins/infer",
        {
            "inputs": [
                {
                    "name": name,
                    "shape": [1, 1],
                    "datatype": "BYTES" if isinstance(value, str) else "FP64",
                    "data": [value],
                }
                for name, value in zip(PENGUIN_NAMES, PENGUIN_ROW, strict=True)
            ]
        },
    ),
}
WARMUP = 500
TOGGLE = "_operator_call"  # the C function behind operator.call


def make_penguins_bundle(directory: Path) -> str:
    """A real bundle of the penguins Pipeline `petalops train` fits; returns its sha256."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.apps.models import FOREST, penguins_frame

    from petalops.config import Settings
    from petalops.data.load import load_dataset
    from petalops.pipeline.compile import compile_candidate
    from petalops.pipeline.fit import fit
    from petalops.pipeline.profile import training_profile
    from petalops.pipeline.split import split

    directory.parent.mkdir(parents=True, exist_ok=True)
    path = directory.parent / "penguins.csv"
    penguins_frame().to_csv(path, index=False)
    settings = Settings(  # type: ignore[call-arg]
        project="penguins",
        home=directory.parent / ".petalops",
        data={"source": str(path), "target": "species"},
        model={"class": FOREST},
    )
    dataset = load_dataset(settings.data, path)
    rows = split(settings, dataset)
    pipeline = fit(settings, rows)
    profile = training_profile(settings, dataset, rows, pipeline)
    digest: str = compile_candidate(directory, pipeline, "penguins", dataset, profile).digest
    return digest


def make_bundle(directory: Path) -> str:
    """A real bundle of a logistic regression on Iris; returns its sha256."""
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from petalops.config import IRIS_CLASSES, IRIS_FEATURES
    from petalops.pipeline.compile import write_bundle
    from petalops.pipeline.profile import build_profile

    iris = load_iris()
    x = np.asarray(iris.data, dtype=np.float64)
    y = np.asarray(iris.target, dtype=np.int64)
    pipeline = Pipeline([("clf", LogisticRegression(max_iter=500))]).fit(x, y)
    profile = build_profile(x, y, IRIS_FEATURES, IRIS_CLASSES)
    return write_bundle(directory, pipeline, "iris", IRIS_FEATURES, IRIS_CLASSES, profile, x)


class BundleSource:
    """One bundle served as iris v1 @champion (the registry is not what is measured)."""

    def __init__(self, directory: Path, sha256: str, name: str = "iris") -> None:
        self.name = name
        self.directory = directory
        self.sha256 = sha256

    def _info(self, version: str) -> Any:
        from petalops.registry import VersionInfo

        return VersionInfo(self.name, version, "run", self.sha256)

    def desired(self) -> Any:
        from petalops.serving.source import Desired

        return Desired(champion=self._info("1"))

    def resolve_version(self, version: str) -> Any:
        return self._info(version)

    def load(self, info: Any) -> Any:
        from petalops.runtime.model import open_bundle

        return open_bundle(self.directory, info.name, info.version, info.sha256)


class NoStore:
    """What a SpoolWriter's thread would tell the store (its health row): nothing here."""

    def record_health(self, *_args: Any) -> None:
        pass


def drive_spooled(app: Any, path: str, body: bytes, n: int, sink: Any) -> None:
    """`drive`, then the spool thread's work for those requests (one file written)."""
    drive(app, path, body, n)
    sink._spool()


class DroppingSink:
    """A prediction sink that keeps nothing: the records are built, then dropped."""

    def log_many(self, records: Any) -> int:
        return len(records)

    def log_answer(self, *answer: Any) -> int:
        """What a sink without the spool's shortcut does: one record dict a row."""
        from petalops.monitoring.record import answer_records

        return self.log_many(answer_records(*answer))

    def close(self, timeout: float = 10.0) -> None:
        pass


def drive(
    app: Any,
    path: str,
    body: bytes,
    n: int,
    headers: list[tuple[bytes, bytes]] | None = None,
    status: int = 200,
) -> None:
    """``n`` requests through the ASGI app, each answered ``status``; nothing may suspend
    (no real I/O happens). ``headers`` go after the usual ones (bench/auth_cost.py's keys)."""
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            *(headers or []),
        ],
    }
    message = {"type": "http.request", "body": body, "more_body": False}
    sent: list[int] = []
    bodies: list[bytes] = []

    async def receive() -> Any:
        return message

    async def send(event: Any) -> None:
        if event["type"] == "http.response.start":
            sent.append(event["status"])
        elif sent and sent[-1] != status:
            bodies.append(event.get("body", b""))

    for _ in range(n):
        coroutine = app(scope, receive, send)
        try:
            coroutine.send(None)
        except StopIteration:
            continue
        coroutine.close()
        raise RuntimeError(f"{path} suspended: the loop would not measure one request")
    if set(sent) != {status}:
        raise RuntimeError(
            f"{path} answered {sorted(set(sent))}, not only {status}: {bodies[:1]!r}"
        )


async def start_app(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The app ``create_app`` builds, started (its lifespan) with the bundle loaded."""
    import petalops
    from petalops.config import Settings
    from petalops.serving import create_app

    print(f"petalops from {Path(petalops.__file__).parent}", file=sys.stderr)
    home = Path(args.work) / ".petalops"
    project = "penguins" if args.model == "penguins" else "iris"
    settings = Settings(home=home, reconcile_seconds=3600, project=project)  # type: ignore[call-arg]
    devnull = os.open(os.devnull, os.O_WRONLY)
    source = BundleSource(Path(args.work) / "bundle", args.sha256, project)
    app = create_app(settings, source=source, log_fd=devnull, open_sink=False)  # type: ignore[arg-type]

    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        await answers.put(message)

    task = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, send))
    await lifespan.put({"type": "lifespan.startup"})
    started = await answers.get()
    if started["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup failed: {started}")
    # Under valgrind an ONNX model loads and warms up past the startup wait: wait for it.
    for _ in range(1200):
        if app.server.holder.ready:
            break
        await asyncio.sleep(0.5)
    return app, lifespan, task


class Garbage:
    """What the cyclic collector freed in each counted loop, written to stderr as
    ``collected N`` (in the loops' order): objects refcounting could not free, a request's
    reference cycles. A worker pays for them in collections (a stall of every request then
    in flight): the figure should be 0."""

    def __init__(self) -> None:
        self.count = 0
        gc.callbacks.append(self._collected)

    def _collected(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            self.count += info["collected"]

    def call(self, function: Any, *args: Any) -> None:
        self.count = 0
        operator.call(function, *args)  # the loop callgrind counts (TOGGLE)
        print(f"collected {self.count}", file=sys.stderr, flush=True)


GARBAGE = Garbage()


async def inner(args: argparse.Namespace) -> None:
    import orjson

    app, lifespan, task = await start_app(args)
    names = args.routes.split(",")
    routes = PENGUIN_ROUTES if args.model == "penguins" else ROUTES
    bodies = {name: (routes[name][0], orjson.dumps(routes[name][1])) for name in names}
    from petalops.monitoring.spool import SpoolWriter

    spool = SpoolWriter(Path(args.work) / "spool", NoStore(), flush_seconds=3600.0)  # type: ignore[arg-type]
    passes = [("off", None), ("on", DroppingSink()), ("spool", spool)]
    for _, sink in passes:
        app.server.side.sink = sink  # reaches into the app: there is no public switch
        for path, body in bodies.values():
            drive(app, path, body, WARMUP)
    spool._spool()
    for name, sink in passes:
        app.server.side.sink = sink
        for path, body in bodies.values():
            gc.collect()  # each loop starts from the same heap: no full collection due in it
            if name == "spool":
                GARBAGE.call(drive_spooled, app, path, body, args.requests, sink)
            else:
                GARBAGE.call(drive, app, path, body, args.requests)  # one callgrind dump each
    app.server.side.sink = None
    spool.close(1.0)
    await lifespan.put({"type": "lifespan.shutdown"})
    await task


class SocketTransport:
    """Enough of uvloop's transport for uvicorn's protocol: counts the 200 answers."""

    def __init__(self) -> None:
        self.answered = 0
        self.other = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        if data.startswith(b"HTTP/1.1 200 "):
            self.answered += 1
        else:
            self.other = bytes(data[:300])

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def feed(protocol: Any, request: bytes, n: int, sink: Any = None) -> None:
    """``n`` requests as bytes into the protocol, one loop turn each (a new read in a real
    server is a new turn too); then the spool thread's work for them."""
    for _ in range(n):
        protocol.data_received(request)
        await asyncio.sleep(0)
    if sink is not None:
        sink._spool()


def http_pass(args: argparse.Namespace) -> None:
    """The "http" rows: each request as bytes through the protocol `petalops serve` runs
    (uvicorn's httptools parser, its request cycle and send, petalops' protocol) and the
    app, on uvloop, spool on: all a worker does but the socket system calls."""
    import orjson
    import uvicorn
    import uvloop
    from uvicorn.server import ServerState

    from petalops.monitoring.spool import SpoolWriter
    from petalops.serving.protocol import CoalescingHttpToolsProtocol

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    app, lifespan, task = loop.run_until_complete(start_app(args))
    spool = SpoolWriter(Path(args.work) / "spool-http", NoStore(), flush_seconds=3600.0)  # type: ignore[arg-type]
    app.server.side.sink = spool
    config = uvicorn.Config(app, lifespan="off", access_log=False, proxy_headers=False)
    config.load()
    protocol = CoalescingHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = SocketTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    routes = PENGUIN_ROUTES if args.model == "penguins" else ROUTES
    requests = []
    for name in args.routes.split(","):
        path, payload = routes[name]
        body = orjson.dumps(payload)
        requests.append(
            b"POST %s HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
        )
    for request in requests:
        loop.run_until_complete(feed(protocol, request, WARMUP, spool))
    for request in requests:
        gc.collect()
        GARBAGE.call(loop.run_until_complete, feed(protocol, request, args.requests, spool))
    expected = (WARMUP + args.requests) * len(requests)
    if transport.answered != expected:
        raise RuntimeError(f"{transport.answered} of {expected} answered 200: {transport.other!r}")
    app.server.side.sink = None
    spool.close(1.0)
    loop.run_until_complete(lifespan.put({"type": "lifespan.shutdown"}))
    loop.run_until_complete(task)
    loop.close()


def outer(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="dispatch-cost-") as work:
        env = dict(os.environ, PYTHONHASHSEED="0")
        if args.src:
            env["PYTHONPATH"] = str(Path(args.src).resolve())
        sha = subprocess.run(
            [
                sys.executable,
                __file__,
                "--bundle",
                str(Path(work) / "bundle"),
                "--model",
                args.model,
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        out = Path(work) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--toggle-collect={TOGGLE}",
            f"--dump-after={TOGGLE}",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--inner",
            "--work",
            work,
            "--sha256",
            sha,
            "--requests",
            str(args.requests),
            "--routes",
            args.routes,
            "--model",
            args.model,
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        origin = [line for line in result.stderr.splitlines() if line.startswith("petalops from")]
        if result.returncode != 0:
            sys.exit(f"the measured run failed:\n{result.stderr[-4000:]}")
        totals = []
        for dump in sorted(Path(work).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:])):
            found = re.search(r"^totals: (\d+)", dump.read_text(), re.MULTILINE)
            totals.append(int(found.group(1)) if found else 0)
        names = args.routes.split(",")
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for dump in Path(work).glob("callgrind.out.*"):
                shutil.copy(dump, args.keep / dump.name)
        expected = 4 * len(names)
        if len(totals) != expected:
            sys.exit(f"expected {expected} callgrind dumps, found {len(totals)}")
        print(
            *origin,
            f"model {args.model} ({args.requests} requests a row, after {WARMUP} of warm-up)",
        )
        routes = PENGUIN_ROUTES if args.model == "penguins" else ROUTES
        collected = [
            int(line.split()[1])
            for line in result.stderr.splitlines()
            if line.startswith("collected ")
        ]
        if len(collected) != len(totals):
            sys.exit(f"expected {len(totals)} collector counts, found {len(collected)}")
        print(
            f"{'route':<26} {'body':<10} {'log':<5} {'instructions / request':>24}"
            f" {'cyclic garbage / request':>25}"
        )
        for i, total in enumerate(totals):
            log = ("off", "on", "spool", "http")[i // len(names)]
            name = names[i % len(names)]
            path = routes[name][0]
            print(
                f"{path:<26} {name:<10} {log:<5} {total / args.requests:>24,.0f}"
                f" {collected[i] / args.requests:>25.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--src", help="a checkout's src/ to measure instead of this one")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--model", choices=("iris", "penguins"), default="iris")
    parser.add_argument("--keep", type=Path, help="copy the callgrind files here")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bundle", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--sha256", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bundle:
        build = make_penguins_bundle if args.model == "penguins" else make_bundle
        print(build(Path(args.bundle)))
    elif args.inner:
        asyncio.run(inner(args))
        http_pass(args)
    else:
        outer(args)


if __name__ == "__main__":
    main()
