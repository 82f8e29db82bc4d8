"""`petalops demo drift | rollout`: thin wrappers around `petalops.demo`.

The demos train models and start servers: their modules are imported inside the commands
so that `petalops --help` does not load scikit-learn and MLflow.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from petalops.cli.common import ConfigOption, SetOption, example, group, settings_from
from petalops.errors import ConfigError

app = group("End-to-end demonstrations on the Iris model.")


@app.command("drift", epilog=example("petalops demo drift --feature petal_length"))
def drift(
    normal: Annotated[int, typer.Option("--normal", help="Rows of normal traffic first.")] = 300,
    shifted: Annotated[int, typer.Option("--shifted", help="Rows of shifting traffic.")] = 600,
    scale: Annotated[
        float, typer.Option("--scale", help="Scale the shifted features reach at the end.")
    ] = 1.3,
    feature: Annotated[
        list[str] | None,
        typer.Option(
            "--feature", metavar="NAME", help="Feature to shift (repeatable; default: all)."
        ),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="DIRECTORY",
            help="Stores for the demo (default: a fresh <home>/demo).",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            metavar="URL",
            help="Send the traffic and feedback to this running server (POST /v1/predict, "
            "/v1/feedback) and use its stores (this project's settings) instead of in-process.",
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Shifting, labelled Iris traffic → drift detected → retrained → challenger → rollout."""
    from petalops.demo.drift import drift_settings, feature_columns, run_drift_demo

    settings, stores = drift_settings(settings_from(config, overrides), home, url)
    try:
        feature_columns(settings, feature)
    except ConfigError as exc:
        raise typer.BadParameter(exc.message) from None
    run_drift_demo(
        settings,
        stores,
        normal=normal,
        shifted=shifted,
        scale=scale,
        features=feature,
        url=url,
    )


@app.command("rollout", epilog=example("petalops demo rollout --interval 5"))
def rollout(
    steps: Annotated[
        str, typer.Option(metavar="PERCENTS", help="Canary weights in percent.")
    ] = "5,25,50,100",
    interval: Annotated[float, typer.Option(help="Seconds per canary step.")] = 10.0,
    rate: Annotated[float, typer.Option(help="Synthetic requests per second.")] = 100.0,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            metavar="DIRECTORY",
            help="Stores for the demo (default: a fresh <home>/demo-rollout).",
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Champion + challenger → real 2-worker server under load → canary, step by step → promoted."""
    from rich.console import Console

    from petalops.demo.rollout import demo_settings, run_canary_demo

    console = Console()
    settings = demo_settings(settings_from(config, overrides), home)
    console.rule("[bold]petalops demo rollout")
    console.print(f"stores: {settings.home_dir}")
    logging.getLogger("petalops.rollout").setLevel(logging.WARNING)

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    figures = run_canary_demo(settings, steps=steps, interval_s=interval, rate=rate, say=say)
    if figures["phase"] != "promoted" or figures["failed"]:
        raise typer.Exit(1)
