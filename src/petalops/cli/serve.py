"""`petalops serve`: the model server in the foreground."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from petalops.cli.common import ConfigOption, SetOption, settings_from


def serve(
    host: Annotated[
        str | None,
        typer.Option(metavar="HOST", help="Interface to bind (default 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(envvar="PORT", min=1, max=65535, help="TCP port (default 8000, or $PORT)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (one per core).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            metavar="NAME@ALIAS",
            help="What to serve: iris@champion (follows rollouts), iris/3, iris@alias.",
        ),
    ] = None,
    wait_for_model: Annotated[
        float | None,
        typer.Option(
            "--wait-for-model",
            metavar="SECONDS",
            min=0,
            help="Start even if the model (or the registry) is not there yet: /readyz answers "
            "503 and the workers retry until it appears; stop with exit 2 if it has not "
            "within SECONDS (0: no limit). For orchestrators that start replicas before the "
            "first model is registered.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert",
            metavar="FILE",
            help="Serve HTTPS with this PEM certificate (chain); needs --tls-key.",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", metavar="FILE", help="The certificate's PEM private key."),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Serve the model over HTTP (tutorial, v1, MLflow, KServe v1, OIP v2) until Ctrl-C.

    Checks first that the port is free, the registry reachable and the model resolvable;
    otherwise one line and exit 2, with nothing started or touched.
    """
    flags: dict[str, Any] = {"host": host, "port": port, "workers": workers, "model": model}
    for flag, path in (("tls_cert", tls_cert), ("tls_key", tls_key)):
        flags[flag] = str(path.resolve()) if path is not None else None
    # As JSON, which --set reads as YAML: `--model 3` stays the string "3".
    given = [f"serve.{k}={json.dumps(v)}" for k, v in flags.items() if v is not None]
    settings = settings_from(config, [*(overrides or []), *given])
    from petalops.serving.preflight import ModelDeadline, check_tls, preflight

    check_tls(settings)

    checked = preflight(settings, wait_for_model=wait_for_model is not None)
    deadline = None
    if checked.version is None:
        sys.stderr.write(
            f"petalops: waiting for {settings.model_ref} ({checked.waiting_reason}); "
            "/readyz answers 503 until it can be served\n"
        )
        if wait_for_model:
            deadline = ModelDeadline(settings, wait_for_model).start()
    from petalops.serving.runner import run

    try:
        run(settings)
    finally:
        if deadline is not None:
            deadline.stop()
    if deadline is not None and deadline.expired:
        raise deadline.error()
