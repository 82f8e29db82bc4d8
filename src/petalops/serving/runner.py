"""Run the server: uvicorn on uvloop + httptools, N worker processes (forked from this one
once it has opened the model, or spawned: ``serve.worker_start``), graceful SIGTERM."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading

from petalops.config import Settings
from petalops.logs import json_log_config
from petalops.monitoring.spool import LOADER_ENV, SPOOL_ENV, loader_config, spool_dir
from petalops.registry import parse_ref
from petalops.serving.app import SETTINGS_ENV
from petalops.serving.lifeline import PARENT_ENV, mark_parent
from petalops.serving.metrics import MULTIPROC_ENV
from petalops.serving.preload import preload
from petalops.serving.routes.admin import DEFAULT_ADMIN_TOKEN
from petalops.ui.builder import SETTINGS_ENV as BUILDER_SETTINGS_ENV
from petalops.ui.document import DOCUMENT_ENV, document_path

FACTORY = "petalops.serving.app:app_from_env"
# httptools, with each response's header block and body sent in one write.
HTTP_PROTOCOL = "petalops.serving.protocol:CoalescingHttpToolsProtocol"


def prepare_environment(settings: Settings) -> None:
    """Hand the resolved settings to the workers and set up multiprocess metrics."""
    os.environ[SETTINGS_ENV] = settings.model_dump_json(by_alias=True)
    os.environ.pop(PARENT_ENV, None)
    if settings.serve.workers > 1:
        mark_parent()
        directory = settings.home_dir / "serve" / f"prometheus-{settings.serve.port}"
        # A stale directory would add dead workers' counts to the new server's.
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = str(directory)
    else:
        os.environ.pop(MULTIPROC_ENV, None)


# The write ends of the side processes' stdin pipes (their lifelines). A worker forked from
# this process (serve.worker_start=fork) would hold copies, and a side process would then see
# the end of its stdin only once every worker had gone too, not when this process dies; each
# forked child points them at /dev/null instead (the numbers stay open, so no other file can
# take them while objects in the child still name them).
_LIFELINES: set[int] = set()


def _drop_lifelines() -> None:
    if not _LIFELINES:
        return
    null = os.open(os.devnull, os.O_WRONLY)
    for fd in _LIFELINES:
        with contextlib.suppress(OSError):
            os.dup2(null, fd)
    os.close(null)
    _LIFELINES.clear()


os.register_at_fork(after_in_child=_drop_lifelines)


class SidecarProcess:
    """A process beside the workers, off every worker's GIL: the spool loader (loads the
    workers' prediction spool into the monitoring store) and the control room's builder;
    restarted if it dies while the server runs."""

    RESTART_SECONDS = 2.0
    SIDE_NICENESS = 5

    def __init__(
        self, command: list[str], env: dict[str, str], name: str = "prediction spool loader"
    ) -> None:
        self.command = command
        self.env = env
        self.name = name
        self.process = self._spawn()
        self._stopping = threading.Event()
        self._watchdog = threading.Thread(target=self._watch, name=name, daemon=True)
        self._watchdog.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Its stdin is its lifeline: closed by stop(), or by the kernel when this process dies.
        process = subprocess.Popen(self.command, env=self.env, stdin=subprocess.PIPE)
        if process.stdin is not None:
            _LIFELINES.add(process.stdin.fileno())
        # Its work can wait a little, a request cannot: when the cores are busy the kernel
        # runs the workers first. Set here, from its first instruction, so its start-up
        # (~0.4 s of imports) yields to the workers' too: measured ~0.4 s sooner to /readyz
        # with 2 workers on 2 cores. (Niceness 5 still leaves it enough to keep up.)
        with contextlib.suppress(OSError):
            niceness = os.getpriority(os.PRIO_PROCESS, 0) + self.SIDE_NICENESS
            os.setpriority(os.PRIO_PROCESS, process.pid, niceness)
        # And a batch job's policy (Linux): its fair share of the cores as before, but no
        # wakeup preemption. The loader wakes every 0.2 s; at 25,000 requests a second and
        # ~9 µs a row (bench/spool_load.py) that is ~45 ms of loading each time, and as an
        # ordinary process it may take a core from a worker (or from a client on the same
        # machine) the moment it wakes.
        if hasattr(os, "SCHED_BATCH"):
            with contextlib.suppress(OSError):
                os.sched_setscheduler(process.pid, os.SCHED_BATCH, os.sched_param(0))
        return process

    def _watch(self) -> None:
        while not self._stopping.wait(self.RESTART_SECONDS):
            code = self.process.poll()
            if code is not None and not self._stopping.is_set():
                sys.stderr.write(f"petalops: the {self.name} exited ({code}); restarted\n")
                if self.process.stdin is not None:
                    _LIFELINES.discard(self.process.stdin.fileno())
                    self.process.stdin.close()
                try:
                    self.process = self._spawn()
                except OSError as exc:
                    sys.stderr.write(f"petalops: cannot restart the {self.name}: {exc!r}\n")

    def stop(self, timeout: float = 30.0) -> None:
        """Close its stdin and wait for it to exit (the loader loads what the workers
        spooled last first)."""
        self._stopping.set()
        self._watchdog.join()
        process = self.process
        if process.stdin is not None:
            _LIFELINES.discard(process.stdin.fileno())
            process.stdin.close()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            sys.stderr.write(f"petalops: the {self.name} did not finish; stopped\n")
            process.kill()
            process.wait(5)


def use_start_method(method: str) -> None:
    """Have uvicorn start its workers with ``method``: "fork" (from this process, with what
    it has imported and opened) or "spawn" (fresh interpreters; uvicorn's own default).

    uvicorn (pinned in constraints.txt) takes every worker process from the module-level
    multiprocessing context ``uvicorn._subprocess.spawn``, with no setting for it; the
    fork context starts the same ``Process`` target, so the supervisor (restarts, SIGTERM,
    SIGHUP) is unchanged and only the start differs."""
    import multiprocessing

    import uvicorn._subprocess

    uvicorn._subprocess.spawn = multiprocessing.get_context(method)  # type: ignore[assignment]


def start_spool_loader(settings: Settings) -> SidecarProcess | None:
    """Start the spool loader and tell the workers to spool; without it (prediction log off,
    or the process cannot start) the workers write the store themselves."""
    os.environ.pop(SPOOL_ENV, None)
    if not settings.serve.log_predictions:
        return None
    directory = spool_dir(settings.home_dir)
    config = loader_config(directory, settings.monitor_url, settings.monitor.retention_days)
    try:
        loader = SidecarProcess(
            [sys.executable, "-m", "petalops.monitoring.spool"], {**os.environ, LOADER_ENV: config}
        )
    except OSError as exc:
        sys.stderr.write(f"petalops: prediction spool loader not started ({exc!r})\n")
        return None
    os.environ[SPOOL_ENV] = str(directory)
    return loader


def start_control_room(settings: Settings) -> SidecarProcess | None:
    """Start the control room's builder and tell the workers to answer its document;
    without it (it cannot start) each worker builds the document itself."""
    os.environ.pop(DOCUMENT_ENV, None)
    env = {**os.environ, BUILDER_SETTINGS_ENV: settings.model_dump_json(by_alias=True)}
    try:
        builder = SidecarProcess(
            [sys.executable, "-m", "petalops.ui.builder"], env, name="control room builder"
        )
    except OSError as exc:
        sys.stderr.write(f"petalops: control room builder not started ({exc!r})\n")
        return None
    os.environ[DOCUMENT_ENV] = str(document_path(settings))
    return builder


def run(settings: Settings) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM (in-flight requests finish first)."""
    import uvicorn

    from petalops.serving.balance import use_balanced_accept

    parse_ref(settings.model_ref, settings.project)  # a bad --model fails here, in one line
    prepare_environment(settings)
    serve = settings.serve
    scheme = "https" if serve.tls_cert is not None else "http"
    sys.stderr.write(
        f"petalops: serving {settings.model_ref} on {scheme}://{serve.host}:{serve.port} "
        f"with {serve.workers} worker(s); docs at /docs, readiness at /readyz\n"
    )
    if settings.admin_token == DEFAULT_ADMIN_TOKEN:
        sys.stderr.write(
            f"petalops: admin routes disabled: PETALOPS_ADMIN_TOKEN is the shipped example "
            f"{DEFAULT_ADMIN_TOKEN!r}; set it to a secret of your own\n"
        )
    if serve.workers > 1:
        if serve.worker_start == "fork":
            # Before the side processes start: imported and opened once, for every worker.
            preload(settings)
        use_start_method(serve.worker_start)
        if serve.worker_start == "fork" and serve.balance_connections:
            # Room for the workers uvicorn starts later too (a killed one's replacement
            # reuses its slot; SIGTTIN adds one).
            use_balanced_accept(slots=max(16, 4 * serve.workers))
    loader = start_spool_loader(settings)
    builder = start_control_room(settings)
    try:
        uvicorn.run(
            FACTORY,
            factory=True,
            host=serve.host,
            port=serve.port,
            workers=serve.workers,
            loop="uvloop",
            http=HTTP_PROTOCOL,
            lifespan="on",
            access_log=False,
            log_level="warning",
            log_config=json_log_config("WARNING"),
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=serve.shutdown_seconds,
            timeout_keep_alive=serve.keep_alive_seconds,  # type: ignore[arg-type]
            # uvicorn's own TLS (ssl.SSLContext on the listening socket).
            ssl_certfile=serve.tls_cert,
            ssl_keyfile=serve.tls_key,
        )
    finally:
        if builder is not None:
            builder.stop(timeout=10)
        if loader is not None:
            loader.stop()
