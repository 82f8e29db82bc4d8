"""End to end, for real: the Docker image, an MLflow server container, two serving replicas
behind an nginx load balancer, Prometheus scraping both, and a canary rollout to a new
version while one replica is killed. No client request may fail.

Everything listens on 127.0.0.1 (containers use --network host); the traffic is bounded in
count and time. Run with `make e2e` (PETALOPS_E2E=1 pytest -m e2e tests/e2e).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT.parent / "shared" / "recipes" / "docker-local.sh"
DOCKER = "/usr/bin/docker"
BASE = "localbase:bookworm-py311"
IMAGE = os.environ.get("PETALOPS_E2E_IMAGE", "petalops:e2e")
SERVE_IMAGE = IMAGE + "-serve"  # `--target serve`: the replicas that scale out
SERVE_IMAGE_LIMIT_MB = 450
PREFIX = "petalops-e2e-"
WORKDIR = Path(os.environ.get("PETALOPS_E2E_WORKDIR", "/tmp/petalops-e2e"))
SUMMARY = WORKDIR / "summary.json"
ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [7.0, 3.2, 4.7, 1.4],
    [6.4, 3.2, 4.5, 1.5],
    [6.3, 3.3, 6.0, 2.5],
    [5.8, 2.7, 5.1, 1.9],
    [6.7, 3.0, 5.2, 2.3],
    [5.9, 3.0, 5.1, 1.8],
]  # clear-cut rows: versions 1 and 2 agree on them, as on 99% of the Iris set
# Every container runs as on Kubernetes: read-only root, writable state and /tmp only.
READ_ONLY = ["--read-only", "--tmpfs", "/var/lib/petalops:uid=10001,gid=10001", "--tmpfs", "/tmp"]
MAX_REQUESTS = 40_000
MAX_TRAFFIC_SECONDS = 300.0


def run(*args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
    # BuildKit, as users get it from `docker build`: the legacy builder has another cache.
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args[:6])}... exited {result.returncode}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.5)
    raise AssertionError(f"{what} not ready after {seconds:.0f}s at {url}: {last}")


def apt_install(*packages: str) -> None:
    missing = [p for p in packages if shutil.which(p) is None]
    if not missing:
        return
    policy = Path("/usr/sbin/policy-rc.d")
    if not policy.exists():  # no init system here: packages must not start services
        policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for another apt run (an install target, a second test session) to let go of the
    # dpkg lock instead of failing at once.
    wait = ["-o", "DPkg::Lock::Timeout=300"]
    subprocess.run(["apt-get", *wait, "update", "-qq"], check=True, env=env, timeout=400)
    subprocess.run(
        ["apt-get", *wait, "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
        timeout=600,
        stdout=subprocess.DEVNULL,
    )


def docker_rm(*names: str) -> None:
    run(DOCKER, "rm", "-f", *names, check=False, timeout=60)


@dataclass
class Stack:
    workdir: Path
    mlflow: int
    replicas: dict[str, int]
    lb: int
    prometheus: int
    env: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def docker_env(self) -> list[str]:
        flags: list[str] = []
        for pair in self.env:
            flags += ["-e", pair]
        return flags

    def petalops(self, *args: str, timeout: float = 300) -> str:
        """Run a one-shot petalops command in a container, as an operator would."""
        result = run(
            DOCKER,
            "run",
            "--rm",
            "--network",
            "host",
            *READ_ONLY,
            "-v",
            f"{self.workdir / 'shared'}:/shared",
            *self.docker_env(),
            IMAGE,
            "petalops",
            *args,
            timeout=timeout,
        )
        return result.stdout

    def start_replica(self, name: str) -> None:
        run(
            DOCKER,
            "run",
            "-d",
            "--name",
            PREFIX + name,
            "--network",
            "host",
            *READ_ONLY,
            "-v",
            f"{self.workdir / 'shared'}:/shared",
            *self.docker_env(),
            "-e",
            "HOST=127.0.0.1",
            "-e",
            f"PORT={self.replicas[name]}",
            SERVE_IMAGE,
            "serve",
        )

    def registered_model(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.mlflow}/api/2.0/mlflow/registered-models/get"
        response = httpx.get(url, params={"name": "iris"}, timeout=5)
        response.raise_for_status()
        model: dict[str, Any] = response.json()["registered_model"]
        return model

    def tag(self, key: str) -> dict[str, Any]:
        for tag in self.registered_model().get("tags", []):
            if tag["key"] == key and tag["value"]:
                value: dict[str, Any] = json.loads(tag["value"])
                return value
        return {}

    def alias(self, name: str) -> str | None:
        for alias in self.registered_model().get("aliases", []):
            if alias["alias"] == name:
                return str(alias["version"])
        return None


NGINX_CONF = """
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/nginx-body;
    proxy_temp_path {workdir}/nginx-proxy;
    fastcgi_temp_path {workdir}/nginx-fastcgi;
    uwsgi_temp_path {workdir}/nginx-uwsgi;
    scgi_temp_path {workdir}/nginx-scgi;
    upstream petalops {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://petalops;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_read_timeout 10s;
            proxy_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
"""

PROMETHEUS_CONF = """
global:
  scrape_interval: 1s
  evaluation_interval: 5s
rule_files: [{rules}]
scrape_configs:
  - job_name: petalops
    metrics_path: /metrics
    static_configs:
      - targets: [{targets}]
"""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    assert RECIPE.exists(), f"{RECIPE} is missing: the e2e needs ../shared/recipes"
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    run("bash", str(RECIPE), "base", BASE, timeout=900)
    timings["engine_and_base_s"] = time.monotonic() - t0
    apt_install("nginx", "prometheus")
    timings["apt_s"] = time.monotonic() - t0 - timings["engine_and_base_s"]

    t1 = time.monotonic()
    build_args = run("bash", str(RECIPE), "build-args").stdout.split()
    for tag, target in ((IMAGE, []), (SERVE_IMAGE, ["--target", "serve"])):
        run(
            DOCKER,
            "build",
            "--network",
            "host",
            *build_args,
            "--build-arg",
            f"BASE_IMAGE={BASE}",
            *target,
            "-t",
            tag,
            "-f",
            str(ROOT / "deploy" / "docker" / "Dockerfile"),
            str(ROOT),
            timeout=900,
        )
    timings["image_build_s"] = time.monotonic() - t1
    for key, tag in (("image_mb", IMAGE), ("serve_image_mb", SERVE_IMAGE)):
        size = run(DOCKER, "image", "inspect", tag, "--format", "{{.Size}}").stdout.strip()
        timings[key] = int(size) / 1e6

    workdir = WORKDIR  # kept after the run: logs/, summary.json, nginx and Prometheus files
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    shared = workdir / "shared"
    shared.mkdir()
    os.chown(shared, 10001, 10001)  # the image's non-root user writes the shared monitor store
    stack = Stack(
        workdir=workdir,
        mlflow=free_port(),
        replicas={"r1": free_port(), "r2": free_port()},
        lb=free_port(),
        prometheus=free_port(),
        env=[],
        timings=timings,
    )
    stack.env = [
        f"PETALOPS_MLFLOW_URI=http://127.0.0.1:{stack.mlflow}",
        "PETALOPS_MONITOR__DB_URL=sqlite:////shared/monitor.db",
        "PETALOPS_RECONCILE_SECONDS=1",
        "PETALOPS_ADMIN_TOKEN=e2e-token",
    ]
    names = [PREFIX + n for n in ("mlflow", "rollout", *stack.replicas)]
    docker_rm(*names)
    try:
        yield stack
    finally:
        for process in stack.processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        for name in names:
            result = run(DOCKER, "logs", name, check=False, timeout=30)
            (logs / f"{name}.log").write_text(result.stdout + result.stderr, encoding="utf-8")
        docker_rm(*names)


@dataclass
class Traffic:
    """Bounded client load through the load balancer, recording every answer."""

    url: str
    threads: int = 3
    pause_s: float = 0.004
    stop: threading.Event = field(default_factory=threading.Event)
    outcomes: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    started: float = 0.0
    ended: float = 0.0
    _workers: list[threading.Thread] = field(default_factory=list)

    def _loop(self, seed: int) -> None:
        rng = random.Random(seed)
        deadline = time.monotonic() + MAX_TRAFFIC_SECONDS
        with httpx.Client(timeout=15) as client:
            while not self.stop.is_set() and time.monotonic() < deadline:
                with self.lock:
                    if self.sent >= MAX_REQUESTS:
                        return
                    self.sent += 1
                row = rng.choice(ROWS)
                key = f"caller-{rng.randrange(1_000_000)}"
                begin = time.perf_counter()
                try:
                    response = client.post(
                        self.url, json={"features": row}, headers={"X-Petalops-Key": key}
                    )
                    elapsed = time.perf_counter() - begin
                    ok = response.status_code == 200
                    version = str(response.json().get("model_version")) if ok else ""
                    detail = f"HTTP {response.status_code}: {response.text[:200]}"
                except (httpx.HTTPError, ValueError) as exc:
                    elapsed, ok, version, detail = time.perf_counter() - begin, False, "", repr(exc)
                with self.lock:
                    self.latencies.append(elapsed)
                    if ok:
                        self.outcomes["ok"] += 1
                        self.versions[version] += 1
                    else:
                        self.outcomes["failed"] += 1
                        self.failures.append(detail)
                time.sleep(self.pause_s)

    def start(self) -> None:
        self.started = time.monotonic()
        for i in range(self.threads):
            worker = threading.Thread(target=self._loop, args=(i,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def finish(self) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(timeout=30)
        self.ended = time.monotonic()


def prometheus_query(port: int, query: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=5
    )
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def test_default_image_serves_the_baked_champion_on_a_read_only_root(stack: Stack) -> None:
    """The tutorial's `docker run` with no configuration, hardened: read-only root, tmpfs."""
    port = free_port()
    name = PREFIX + "tutorial"
    docker_rm(name)
    try:
        run(
            DOCKER,
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            *READ_ONLY,
            "-e",
            "HOST=127.0.0.1",
            "-e",
            f"PORT={port}",
            IMAGE,
        )
        wait_http(f"http://127.0.0.1:{port}/readyz", 90, "the default image")
        response = httpx.post(
            f"http://127.0.0.1:{port}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=5
        )
        assert response.status_code == 200, response.text
        assert response.json()["flower_type"] == "setosa"
        user = run(DOCKER, "exec", name, "id", "-u").stdout.strip()
        assert user == "10001"
        deadline = time.monotonic() + 60
        health = ""
        while time.monotonic() < deadline:
            health = run(
                DOCKER, "inspect", name, "--format", "{{.State.Health.Status}}"
            ).stdout.strip()
            if health == "healthy":
                break
            time.sleep(1)
        assert health == "healthy"
    finally:
        docker_rm(name)


def test_serve_image_is_small_serves_standalone_and_refuses_other_roles(stack: Stack) -> None:
    """`--target serve`: within the size target, the baked champion, and one line for a role
    it does not carry (the replicas of the rollout test below run this image too)."""
    assert stack.timings["serve_image_mb"] <= SERVE_IMAGE_LIMIT_MB, stack.timings
    port = free_port()
    name = PREFIX + "serve-only"
    docker_rm(name)
    try:
        run(DOCKER, "run", "-d", "--name", name, "--network", "host", *READ_ONLY,
            "-e", "HOST=127.0.0.1", "-e", f"PORT={port}", SERVE_IMAGE)  # fmt: skip
        wait_http(f"http://127.0.0.1:{port}/readyz", 90, "the serve-only image")
        response = httpx.post(
            f"http://127.0.0.1:{port}/predict", json={"features": [6.7, 3.0, 5.2, 2.3]}, timeout=5
        )
        assert response.status_code == 200, response.text
        assert response.json()["prediction"] == 2
        absent = run(DOCKER, "exec", name, "python3", "-c",
                     "import importlib.util as u; print([m for m in ('mlflow', 'pandas', 'sklearn', 'pyarrow', 'matplotlib') if u.find_spec(m)])")  # fmt: skip
        assert absent.stdout.strip() == "[]"
    finally:
        docker_rm(name)
    refused = run(DOCKER, "run", "--rm", "--network", "host", SERVE_IMAGE, "train", check=False)
    assert refused.returncode == 2
    assert "needs the full image" in refused.stderr and "Traceback" not in refused.stderr


def test_canary_rollout_through_the_load_balancer_survives_a_replica_kill(stack: Stack) -> None:
    t0 = time.monotonic()
    shared = f"{stack.workdir / 'shared'}:/shared"
    run(
        DOCKER,
        "run",
        "-d",
        "--name",
        PREFIX + "mlflow",
        "--network",
        "host",
        *READ_ONLY,
        "-e",
        "HOST=127.0.0.1",
        "-e",
        f"PORT={stack.mlflow}",
        "-e",
        "MLFLOW_WORKERS=2",
        IMAGE,
        "mlflow",
        "server",
    )
    wait_http(f"http://127.0.0.1:{stack.mlflow}/health", 120, "the MLflow server")
    stack.petalops("train")  # version 1 becomes the champion
    assert stack.alias("champion") == "1"

    for name in stack.replicas:
        stack.start_replica(name)
    for name, port in stack.replicas.items():
        wait_http(f"http://127.0.0.1:{port}/readyz", 120, f"replica {name}")

    servers = "\n".join(
        f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;"
        for port in stack.replicas.values()
    )
    nginx_conf = stack.workdir / "nginx.conf"
    nginx_conf.write_text(
        NGINX_CONF.format(workdir=stack.workdir, servers=servers, port=stack.lb), encoding="utf-8"
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    stack.processes.append(
        subprocess.Popen(
            [
                nginx,
                "-e",
                str(stack.workdir / "nginx-error.log"),
                "-c",
                str(nginx_conf),
                "-g",
                "daemon off;",
            ]
        )
    )
    rules = ROOT / "deploy" / "prometheus" / "alerts.yml"
    prom_conf = stack.workdir / "prometheus.yml"
    prom_conf.write_text(
        PROMETHEUS_CONF.format(
            rules=json.dumps(str(rules)) if rules.exists() else "",
            targets=", ".join(f'"127.0.0.1:{p}"' for p in stack.replicas.values()),
        ),
        encoding="utf-8",
    )
    prometheus = shutil.which("prometheus") or "/usr/bin/prometheus"
    with (stack.workdir / "prometheus.log").open("wb") as log:
        stack.processes.append(
            subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={prom_conf}",
                    f"--storage.tsdb.path={stack.workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{stack.prometheus}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    wait_http(f"http://127.0.0.1:{stack.lb}/readyz", 30, "the nginx load balancer")
    wait_http(f"http://127.0.0.1:{stack.prometheus}/-/ready", 60, "Prometheus")
    stack.timings["stack_up_s"] = time.monotonic() - t0

    traffic = Traffic(url=f"http://127.0.0.1:{stack.lb}/predict")
    traffic.start()
    try:
        # A second version, quality-gated against the champion: it becomes the challenger.
        stack.petalops("train", "--set", "model.params.C=0.5")
        challenger = stack.alias("challenger")
        assert challenger == "2", f"the second training did not register a challenger: {challenger}"

        run(
            DOCKER,
            "run",
            "-d",
            "--name",
            PREFIX + "rollout",
            "--restart",
            "on-failure:5",  # as compose and Kubernetes restart it
            "--network",
            "host",
            *READ_ONLY,
            "-v",
            shared,
            *stack.docker_env(),
            IMAGE,
            "rollout",
        )
        started = time.monotonic()
        stack.petalops(
            "rollout",
            "start",
            challenger,
            "--strategy",
            "canary",
            "--steps",
            "25,50,100",
            "--interval",
            "8s",
            "--min-samples",
            "40",
            "--max-p99-ms",
            "250",
        )

        killed_at = None
        phase = ""
        seen: list[str] = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            plan = stack.tag("petalops.rollout")
            phase = plan.get("phase", "")
            weight = stack.tag("petalops.traffic").get("weight", 0)
            state = f"{phase}@{weight}%"
            if not seen or seen[-1] != state:
                seen.append(state)
            if killed_at is None and phase == "running" and 0 < weight < 100:
                time.sleep(2)
                run(DOCKER, "kill", PREFIX + "r1")
                killed_at = time.monotonic() - started
            if plan and phase not in ("warming", "running", "flipped", "promoting", ""):
                break
            time.sleep(0.5)
        stack.timings["rollout_s"] = time.monotonic() - started
        assert killed_at is not None, f"the replica was never killed mid-rollout: {seen} {plan}"
        assert phase == "promoted", f"the rollout ended {phase!r}: {seen} {plan}"
        assert stack.alias("champion") == challenger

        # The killed replica comes back and reconciles to the new champion by itself.
        run(DOCKER, "start", PREFIX + "r1")
        r1 = stack.replicas["r1"]
        wait_http(f"http://127.0.0.1:{r1}/readyz", 120, "the restarted replica")
        deadline = time.monotonic() + 30
        answered = ""
        while time.monotonic() < deadline:
            reply = httpx.post(
                f"http://127.0.0.1:{r1}/predict", json={"features": ROWS[0]}, timeout=5
            )
            answered = str(reply.json().get("model_version"))
            if answered == challenger:
                break
            time.sleep(0.5)
        assert answered == challenger
        time.sleep(3)  # a few more scrapes with both replicas up
    finally:
        traffic.finish()

    seconds = traffic.ended - traffic.started
    latencies = sorted(traffic.latencies)
    summary = {
        **{k: round(v, 1) for k, v in stack.timings.items()},
        "requests": traffic.sent,
        "ok": traffic.outcomes["ok"],
        "failed": traffic.outcomes["failed"],
        "by_version": dict(traffic.versions),
        "client_rps": round(len(latencies) / seconds, 1) if seconds else 0,
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2) if latencies else None,
        "replica_killed_after_s": round(killed_at, 1),
        "rollout_states": seen,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    SUMMARY.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print("\ne2e summary:", json.dumps(summary))

    assert traffic.outcomes["failed"] == 0, traffic.failures[:5]
    assert traffic.outcomes["ok"] > 500
    assert traffic.versions[challenger] > 0
    assert traffic.versions["1"] > 0

    scraped = prometheus_query(
        stack.prometheus, 'max by (instance) (max_over_time(up{job="petalops"}[10m]))'
    )
    assert {r["metric"]["instance"] for r in scraped if r["value"][1] == "1"} == {
        f"127.0.0.1:{p}" for p in stack.replicas.values()
    }
    served = prometheus_query(
        stack.prometheus, "sum by (instance) (max_over_time(petalops_requests_total[10m]))"
    )
    assert len([r for r in served if float(r["value"][1]) > 0]) == 2, served
