"""Cold start: from `petalops serve --workers 2` to ``/readyz`` 200, next to the floor's.

    .venv/bin/python bench/startup.py                 # 5 starts of each, interleaved
    .venv/bin/python bench/startup.py --starts 9 --workers 4
    .venv/bin/python bench/startup.py --baseline ../main   # another checkout's serve beside
    .venv/bin/python bench/startup.py --docker        # the same for the serve-only image
    .venv/bin/python bench/startup.py --docker --baseline main   # and main's image beside it

Targets, each started ``--starts`` times, taking turns (the machine's background load drifts,
so every target sees the same stretch of it), on 127.0.0.1 only:
  floor          uvicorn + uvloop + httptools, ``--workers`` processes, serving a raw ASGI
                 app that answers a constant (bench/apps/floor.py): Python HTTP's own start
  petalops       ``petalops serve --workers N`` as shipped (``serve.worker_start=fork``) on a
                 trained home, until ``/readyz`` answers 200
  petalops-spawn the same with ``--set serve.worker_start=spawn`` (each worker a fresh
                 interpreter that imports petalops and loads the model itself)

A start is timed from just before the process is created to the first 200 of its readiness
path, polled every 10 ms, and stopped with SIGTERM before the next one. With ``--docker``
the serve-only image (``docker build --target serve``, deploy/docker/Dockerfile) is built on
the local base image (/work/shared/recipes/docker-local.sh: no image can be pulled here) and
each target runs in a container on ``--network host``: the floor is uvicorn from the same
image's venv. Prints the median of each and every start; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.01
RECIPE = Path("/work/shared/recipes/docker-local.sh")
DOCKER = "/usr/bin/docker"
BASE_IMAGE = "localbase:bookworm-py311"
IMAGE = "petalops:startup-bench"
BASELINE_IMAGE = "petalops:startup-baseline"


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def time_start(
    start: Callable[[], subprocess.Popen[bytes]],
    url: str,
    stop: Callable[[subprocess.Popen[bytes]], None],
    timeout: float = 60.0,
) -> float:
    """Seconds from `start()` to the first 200 of ``url``; the server is stopped after."""
    began = time.perf_counter()
    process = start()
    try:
        deadline = began + timeout
        while not ready(url):
            if process.poll() is not None:
                raise RuntimeError(f"{url}: the server exited ({process.returncode}) before ready")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout} s")
            time.sleep(POLL_SECONDS)
        return time.perf_counter() - began
    finally:
        stop(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def trained_home(workdir: Path) -> Path:
    """A home with the Iris champion registered (trained once into the work directory)."""
    home = workdir / ".petalops"
    if not (home / "mlflow.db").exists():
        subprocess.run(
            [sys.executable, "-m", "petalops", "train"],
            env={**os.environ, "PETALOPS_HOME": str(home)},
            cwd=workdir,
            check=True,
            capture_output=True,
        )
    return home


def local_targets(
    workdir: Path, workers: int, log: Path, port: int, baseline: Path | None = None
) -> dict[str, tuple[Callable[[], subprocess.Popen[bytes]], str]]:
    home = trained_home(workdir)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PETALOPS_HOME": str(home)}
    env["PETALOPS_MONITOR__DB_URL"] = f"sqlite:///{workdir / 'monitor.db'}"

    def popen(
        command: list[str], extra: dict[str, str] | None = None
    ) -> Callable[[], subprocess.Popen[bytes]]:
        def start() -> subprocess.Popen[bytes]:
            with log.open("ab") as out:
                return subprocess.Popen(
                    command,
                    env={**env, **(extra or {})},
                    cwd=workdir,
                    stdout=out,
                    stderr=out,
                    start_new_session=True,
                )

        return start

    serve = [sys.executable, "-m", "petalops", "serve", "--port", str(port)]
    serve += ["--workers", str(workers)]
    floor = [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)]
    floor += ["--workers", str(workers), "--loop", "uvloop", "--http", "httptools"]
    floor += ["--no-access-log", "--log-level", "warning", "bench.apps.floor:app"]
    base = f"http://127.0.0.1:{port}"
    targets = {
        "floor": (popen(floor), base + "/"),
        "petalops": (popen(serve), base + "/readyz"),
        "petalops-spawn": (
            popen([*serve, "--set", "serve.worker_start=spawn"]),
            base + "/readyz",
        ),
    }
    if baseline is not None:  # another checkout's `petalops serve`, with its own .venv
        other = [str(baseline / ".venv" / "bin" / "python"), *serve[1:]]
        targets["baseline"] = (
            popen(other, {"PYTHONPATH": str(baseline / "src")}),
            base + "/readyz",
        )
    return targets


# -- Docker ------------------------------------------------------------------------------


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DOCKER, *args], check=check, capture_output=True, text=True)


def build_image(tag: str = IMAGE, ref: str | None = None) -> None:
    """The serve-only image on the local base, as deploy/docker/Dockerfile builds it: of
    this checkout, or (``ref``) of that git commit's tree (`git archive`, as the context)."""
    subprocess.run(["bash", str(RECIPE), "engine"], check=True)
    subprocess.run(["bash", str(RECIPE), "base", BASE_IMAGE], check=True)
    hosts = subprocess.run(
        ["bash", str(RECIPE), "build-args"], check=True, capture_output=True, text=True
    ).stdout.split()
    print(f"building {tag} (docker build --target serve) of {ref or 'this checkout'} …", flush=True)
    command = [DOCKER, "build", "--network", "host", *hosts, "--build-arg"]
    command += [f"BASE_IMAGE={BASE_IMAGE}", "--target", "serve", "-t", tag]
    command += ["-f", "deploy/docker/Dockerfile", "-" if ref else "."]
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    if ref is None:
        subprocess.run(command, cwd=ROOT, check=True, env=env)
        return
    archive = subprocess.Popen(["git", "archive", ref], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(command, cwd=ROOT, check=True, env=env, stdin=archive.stdout)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {ref} failed")


def docker_targets(
    workers: int, port: int, baseline: str | None = None
) -> dict[str, tuple[Callable[[], subprocess.Popen[bytes]], str]]:
    base = f"http://127.0.0.1:{port}"
    names: list[str] = []

    def run(
        name: str, *command: str, env: tuple[str, ...] = ()
    ) -> Callable[[], subprocess.Popen[bytes]]:
        def start() -> subprocess.Popen[bytes]:
            container = f"petalops-startup-{os.getpid()}-{len(names)}"
            names.append(container)
            options = ["--rm", "--name", container, "--network", "host"]
            options += ["-e", "HOST=127.0.0.1", "-e", f"PORT={port}", "-e", f"WORKERS={workers}"]
            for pair in env:
                options += ["-e", pair]
            return subprocess.Popen(
                [DOCKER, "run", *options, *command],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )

        return start

    floor_cmd = ["--entrypoint", "/opt/venv/bin/python", IMAGE, "-c", FLOOR_IN_IMAGE]
    floor_cmd += [str(port), str(workers), (ROOT / "bench" / "apps" / "floor.py").read_text()]
    targets = {
        "floor": (run("floor", *floor_cmd), base + "/"),
        "petalops": (run("petalops", IMAGE), base + "/readyz"),
        "petalops-spawn": (
            run("petalops-spawn", IMAGE, env=("PETALOPS_SERVE__WORKER_START=spawn",)),
            base + "/readyz",
        ),
    }
    if baseline is not None:
        targets["baseline"] = (run("baseline", BASELINE_IMAGE), base + "/readyz")
    return targets


# The floor inside the image: the same constant-answer app (bench/apps/floor.py, which is
# not in the image) written to /tmp as a module the workers import, on the image's uvicorn.
FLOOR_IN_IMAGE = r"""
import pathlib, sys
pathlib.Path("/tmp/floor.py").write_text(sys.argv[3])
sys.path.insert(0, "/tmp")
import uvicorn
uvicorn.run("floor:app", host="127.0.0.1", port=int(sys.argv[1]), workers=int(sys.argv[2]),
            loop="uvloop", http="httptools", access_log=False, log_level="warning")
"""


def stop_container(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to `docker run` reaches the container (it is attached); then wait for it."""
    stop_process(process)


# -- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=5, help="starts of each target")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--targets", default="floor,petalops,petalops-spawn,baseline")
    parser.add_argument("--docker", action="store_true", help="the serve-only image instead")
    parser.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="another checkout (with its .venv) whose serve starts beside; with --docker a git "
        "commit (e.g. main) whose serve-only image does",
    )
    parser.add_argument("--workdir", type=Path, help="keep the trained home here")
    parser.add_argument("--port", type=int, default=19100, help="every target's port, in turn")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="petalops-startup-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "servers.log"
    if args.docker:
        build_image()
        if args.baseline:
            build_image(BASELINE_IMAGE, args.baseline)
        targets = docker_targets(args.workers, args.port, args.baseline)
        stop = stop_container
    else:
        baseline = Path(args.baseline).resolve() if args.baseline else None
        targets = local_targets(workdir, args.workers, log, args.port, baseline)
        stop = stop_process
    chosen = [t for t in args.targets.split(",") if t in targets]
    times: dict[str, list[float]] = {t: [] for t in chosen}
    for _ in range(args.starts):
        for target in chosen:  # taking turns: each sees the same drift of the load
            start, url = targets[target]
            times[target].append(time_start(start, url, stop))
    load = os.getloadavg()
    where = f"the serve-only image ({IMAGE}), docker run --network host" if args.docker else ""
    print(
        f"\ncold start to ready, {args.workers} workers, {args.starts} starts each, "
        f"interleaved{', ' + where if where else ''}; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )
    floor = statistics.median(times["floor"]) if "floor" in times else None
    print(f"{'':16} {'median s':>9} {'x floor':>8}   every start (s)")
    for target in chosen:
        median = statistics.median(times[target])
        ratio = f"{median / floor:8.2f}" if floor else f"{'':8}"
        starts = " ".join(f"{t:.2f}" for t in times[target])
        print(f"{target:16} {median:9.2f} {ratio}   {starts}")
    if not args.workdir and not args.docker:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
