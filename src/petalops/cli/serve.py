"""`petalops serve`: the model server in the foreground."""

from __future__ import annotations

from typing import Annotated

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
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Serve the model over HTTP (tutorial, v1, MLflow, KServe v1, OIP v2) until Ctrl-C."""
    settings = settings_from(config, overrides)
    if host is not None:
        settings.serve.host = host
    if port is not None:
        settings.serve.port = port
    if workers is not None:
        settings.serve.workers = workers
    if model is not None:
        settings.serve.model = model
    from petalops.serving.runner import run

    run(settings)
