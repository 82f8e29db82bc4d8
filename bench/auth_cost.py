"""CPU instructions per /predict request with and without API keys, counted by callgrind.

    .venv/bin/python bench/auth_cost.py                  # 5,000 requests a row
    .venv/bin/python bench/auth_cost.py --requests 20000

One process, one app (`bench/dispatch_cost.py`'s bundle, source and driver conventions),
four rows measured in the same run, so the first is the baseline of the others:

* ``no keys``: no key exists, nothing sent (every server before its first `keys create`);
* ``key``: a predict key exists and each request sends it (``Authorization: Bearer``);
* ``key + rate``: the same key with a rate limit high enough never to refuse (the bucket);
* ``refused``: a key exists and the request sends none (the 401 answer).

Needs valgrind. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import operator
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from dispatch_cost import TOGGLE, WARMUP, BundleSource, drive, make_bundle

ROW = b'{"features": [5.1, 3.5, 1.4, 0.2]}'
CASES = ("no keys", "key", "key + rate", "refused")


async def inner(args: argparse.Namespace) -> None:
    from petalops.config import Settings
    from petalops.security.keys import new_key
    from petalops.serving import create_app

    home = Path(args.work) / ".petalops"
    settings = Settings(home=home, reconcile_seconds=3600)  # type: ignore[call-arg]
    devnull = os.open(os.devnull, os.O_WRONLY)
    source = BundleSource(Path(args.work) / "bundle", args.sha256)
    app = create_app(settings, source=source, log_fd=devnull, open_sink=False)  # type: ignore[arg-type]
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    answers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        await answers.put(message)

    task = asyncio.create_task(app({"type": "lifespan"}, lifespan.get, send))
    await lifespan.put({"type": "lifespan.startup"})
    if (await answers.get())["type"] != "lifespan.startup.complete":
        raise RuntimeError("startup failed")

    key, plain = new_key("bench", "predict")
    limited_key, limited = new_key("bench-rated", "predict", "1000000000/s")
    bearer = [(b"authorization", f"Bearer {key}".encode())]
    rated = [(b"authorization", f"Bearer {limited_key}".encode())]
    guard = app.server.keys
    # (the key set the worker holds, the request's headers, the status it gets)
    cases = [([], [], 200), ([plain, limited], bearer, 200), ([plain, limited], rated, 200)]
    cases.append(([plain, limited], [], 401))
    for keys, headers, status in cases:
        guard.use(keys)
        drive(app, "/predict", ROW, WARMUP, headers, status)
    for keys, headers, status in cases:
        guard.use(keys)
        gc.collect()
        operator.call(
            drive, app, "/predict", ROW, args.requests, headers, status
        )  # one callgrind dump each
    await lifespan.put({"type": "lifespan.shutdown"})
    await task


def outer(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="auth-cost-") as work:
        env = dict(os.environ, PYTHONHASHSEED="0")
        sha = subprocess.run(
            [sys.executable, __file__, "--bundle", str(Path(work) / "bundle")],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--toggle-collect={TOGGLE}",
            f"--dump-after={TOGGLE}",
            f"--callgrind-out-file={Path(work) / 'callgrind.out'}",
            sys.executable,
            __file__,
            "--inner",
            "--work",
            work,
            "--sha256",
            sha,
            "--requests",
            str(args.requests),
        ]
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            sys.exit(f"the measured run failed:\n{result.stderr[-4000:]}")
        totals = []
        for dump in sorted(Path(work).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:])):
            found = re.search(r"^totals: (\d+)", dump.read_text(), re.MULTILINE)
            totals.append(int(found.group(1)) if found else 0)
        if len(totals) != len(CASES):
            sys.exit(f"expected {len(CASES)} callgrind dumps, found {len(totals)}")
        base = totals[0] / args.requests
        print(f"POST /predict, {args.requests} requests a row, after {WARMUP} of warm-up")
        print(f"{'case':<12} {'instructions / request':>24} {'vs no keys':>12}")
        for case, total in zip(CASES, totals, strict=True):
            per = total / args.requests
            print(f"{case:<12} {per:>24,.0f} {per - base:>+12,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bundle", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--sha256", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bundle:
        print(make_bundle(Path(args.bundle)))
    elif args.inner:
        asyncio.run(inner(args))
    else:
        outer(args)


if __name__ == "__main__":
    main()
