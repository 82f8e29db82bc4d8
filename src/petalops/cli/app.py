"""The `petalops` command. Every sub-command is a thin wrapper around a library function.

Heavy libraries (MLflow, scikit-learn, pandas) are imported inside the commands that need
them, so `petalops predict` and `petalops --help` start fast.
"""

from __future__ import annotations

import sys

import typer

from petalops.cli import demo as demo_cmd
from petalops.cli import experiments as experiments_cmd
from petalops.cli import monitor as monitor_cmd
from petalops.cli import predict as predict_cmd
from petalops.cli import registry as registry_cmd
from petalops.cli import rollout as rollout_cmd
from petalops.cli import serve as serve_cmd
from petalops.cli import train as train_cmd
from petalops.cli.common import run_guarded

app = typer.Typer(
    name="petalops",
    help="Train, register, serve, roll out and monitor a tabular classifier.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("train")(train_cmd.train)
app.command("predict")(predict_cmd.predict)
app.command("config")(train_cmd.show_config)
app.command("serve")(serve_cmd.serve)
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(rollout_cmd.app, name="rollout")
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(demo_cmd.app, name="demo")
app.command("reproduce")(experiments_cmd.reproduce)
app.command("tune")(experiments_cmd.tune)
app.command("export")(experiments_cmd.export)
app.command("ui")(experiments_cmd.ui)
app.add_typer(experiments_cmd.runs_app, name="runs")


def main() -> None:
    """Console entry point: domain errors become one line and an exit code, never a traceback."""
    sys.exit(run_guarded(app))
