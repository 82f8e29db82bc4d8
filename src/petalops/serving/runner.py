"""Run the server: uvicorn on uvloop + httptools, N worker processes, graceful SIGTERM."""

from __future__ import annotations

import os
import shutil
import sys

from petalops.config import Settings
from petalops.registry import parse_ref
from petalops.serving.app import SETTINGS_ENV
from petalops.serving.metrics import MULTIPROC_ENV

FACTORY = "petalops.serving.app:app_from_env"
# httptools, with each response's header block and body sent in one write.
HTTP_PROTOCOL = "petalops.serving.protocol:CoalescingHttpToolsProtocol"


def prepare_environment(settings: Settings) -> None:
    """Hand the resolved settings to the workers and set up multiprocess metrics."""
    os.environ[SETTINGS_ENV] = settings.model_dump_json(by_alias=True)
    if settings.serve.workers > 1:
        directory = settings.home_dir / "serve" / f"prometheus-{settings.serve.port}"
        # A stale directory would add dead workers' counts to the new server's.
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True, exist_ok=True)
        os.environ[MULTIPROC_ENV] = str(directory)
    else:
        os.environ.pop(MULTIPROC_ENV, None)


def run(settings: Settings) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM (in-flight requests finish first)."""
    import uvicorn

    parse_ref(settings.model_ref, settings.project)  # a bad --model fails here, in one line
    prepare_environment(settings)
    serve = settings.serve
    sys.stderr.write(
        f"petalops: serving {settings.model_ref} on http://{serve.host}:{serve.port} "
        f"with {serve.workers} worker(s); docs at /docs, readiness at /readyz\n"
    )
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
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=serve.shutdown_seconds,
    )
