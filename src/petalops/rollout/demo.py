"""`petalops demo rollout`: a real canary, end to end, on this machine.

Trains a champion and a challenger with other parameters, starts `petalops serve` with two
workers on 127.0.0.1, drives synthetic traffic at it, and runs the rollout controller in
this process, printing each decision as it happens.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from petalops.config import Settings
from petalops.errors import PetalopsError
from petalops.rollout.analysis import Thresholds

# The demo's server re-reads the registry every second, so each step shows up at once.
DEMO_RECONCILE_SECONDS = 1.0


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """`petalops serve --workers N` for these settings' stores, in a child process."""

    def __init__(
        self,
        settings: Settings,
        workers: int = 2,
        reconcile: float = 1.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.reconcile = reconcile
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = settings.home_dir / f"serve-{self.port}.log"

    def start(self, timeout: float = 90.0) -> ServerProcess:
        import httpx

        env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
        env.update(
            PETALOPS_HOME=str(self.settings.home_dir),
            PETALOPS_MLFLOW_URI=self.settings.mlflow_uri,
            PETALOPS_MONITOR__DB_URL=self.settings.monitor.db_url,
            PETALOPS_RECONCILE_SECONDS=str(self.reconcile),
            PETALOPS_MONITOR__FLUSH_SECONDS="0.2",
        )
        env.update(self.extra_env)
        command = [sys.executable, "-m", "petalops", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        self.settings.home_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.settings.home_dir
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise PetalopsError(f"the server exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise PetalopsError(f"the server was not ready in {timeout:.0f}s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_canary_demo(
    settings: Settings,
    *,
    steps: str = "5,25,50,100",
    interval_s: float = 10.0,
    rate: float = 100.0,
    thresholds: Thresholds | None = None,
    say: Callable[[str], None] = print,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Train two versions, serve, load, canary to 100 %; returns the figures."""
    from petalops.pipeline.run import train
    from petalops.registry.store import alias_version
    from petalops.rollout.controller import Controller, rollout_history, start_rollout
    from petalops.rollout.plan import RolloutPlan
    from petalops.rollout.traffic import Traffic

    champion = alias_version(settings, "champion")
    if champion is None:
        first = train(settings, run_name="demo-champion")
        champion = first.version
        say(
            f"1. champion: trained {settings.project}/{champion} "
            f"(LogisticRegression C=1.0, test accuracy {first.metrics['accuracy']:.3f})"
        )
    else:
        say(f"1. champion: {settings.project}/{champion}")
    other = settings.model_copy(deep=True)
    other.model.params = {**settings.model.params, "C": 0.3}
    second = train(other, run_name="demo-challenger")
    version = second.version or ""
    say(
        f"2. challenger: trained {settings.project}/{version} with other parameters "
        f"(C=0.3, test accuracy {second.metrics['accuracy']:.3f}), alias @{second.alias}"
    )
    with ServerProcess(settings, workers=2, reconcile=settings.reconcile_seconds) as server:
        say(f"3. serving on {server.url} with 2 workers (log: {server.log_path})")
        seconds = timeout_s + 30
        traffic = Traffic(server.url, rate=rate, threads=2, feedback=True).start(seconds)
        time.sleep(2)
        limits = thresholds or Thresholds(min_samples=100, max_p99_ms=250.0)
        rollout_id = start_rollout(
            settings, version, "canary", steps=steps, interval_s=interval_s, thresholds=limits
        )
        say(
            f"4. canary {rollout_id}: steps {steps} %, {interval_s:g}s per step, "
            f"{rate:g} requests/s; promotes on pass, rolls back on any breach"
        )
        started = time.time()
        seen: set[int] = set()

        def show(_plan: RolloutPlan | None) -> None:
            for event in rollout_history(settings, rollout_id):
                if event["id"] in seen:
                    continue
                seen.add(event["id"])
                verdict = event["detail"].get("verdict") or {}
                numbers = ""
                if verdict:
                    ch, cp = verdict["challenger"], verdict.get("champion") or {}
                    numbers = (
                        f"  [challenger n={ch['requests']} p99={_num(ch['p99_ms'], '.1f')}ms "
                        f"errors={_num(ch['error_rate'], '.1%')} "
                        f"disagree={_num(ch['disagreement_rate'], '.1%')}"
                        + (f"; champion n={cp['requests']}" if cp else "")
                        + "]"
                    )
                say(
                    f"   +{max(0.0, event['ts'] - started):5.1f}s  {event['action']:<8} "
                    f"weight {event['weight']:>5g}%  {event['reason']}{numbers}"
                )

        stop = threading.Event()
        timer = threading.Timer(timeout_s, stop.set)
        timer.start()
        try:
            final = Controller(settings).run(stop, until_done=rollout_id, on_tick=show)
        finally:
            timer.cancel()
        time.sleep(2.5)  # traffic after the last decision, served by the new champion
        report = traffic.stop()
    served = {f"v{v} {variant}": n for (v, variant), n in sorted(report.served.items())}
    figures = {
        "rollout_id": rollout_id,
        "phase": final.phase if final else "unfinished",
        "requests": report.sent,
        "failed": report.failed,
        "served": served,
        "p99_ms_client": round(report.p99_ms(), 2),
        "seconds": round(time.time() - started, 1),
    }
    say(
        f"5. {figures['phase']} after {figures['seconds']}s: {report.sent} requests, "
        f"{report.failed} failed, client p99 {figures['p99_ms_client']} ms; answered by "
        + ", ".join(f"{k}: {n}" for k, n in served.items())
    )
    return figures


def demo_settings(base: Settings, home: Path | None) -> Settings:
    """Fresh embedded stores for the demo: ``home`` or ``<home>/demo-rollout`` (wiped)."""
    import shutil

    demo_home = home or base.home_dir / "demo-rollout"
    if home is None and demo_home.exists():
        shutil.rmtree(demo_home)  # only the default demo directory is ever wiped
    settings = base.model_copy(
        update={"home": demo_home, "mlflow_uri": "", "experiment": f"{base.project}-demo"}
    )
    settings.monitor = settings.monitor.model_copy(update={"db_url": ""})
    settings.reconcile_seconds = DEMO_RECONCILE_SECONDS
    return settings
