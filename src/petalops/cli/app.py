"""The `petalops` command. Every sub-command is a thin wrapper around a library function.

Heavy libraries (MLflow, scikit-learn, pandas) are imported inside the commands that need
them, so `petalops --help`, `predict`, `registry list` and the other everyday commands start
fast (tests/unit/cli/test_imports.py keeps them out).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

import petalops
from petalops.cli import audit as audit_cmd
from petalops.cli import demo as demo_cmd
from petalops.cli import experiments as experiments_cmd
from petalops.cli import keys as keys_cmd
from petalops.cli import monitor as monitor_cmd
from petalops.cli import predict as predict_cmd
from petalops.cli import registry as registry_cmd
from petalops.cli import rollout as rollout_cmd
from petalops.cli import serve as serve_cmd
from petalops.cli import signing as signing_cmd
from petalops.cli import train as train_cmd
from petalops.cli.common import CommandGroup, example, run_guarded

# -h beside --help, in every sub-command too (a context passes it on to its children).
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="petalops",
    help="Train, register, serve, roll out and monitor a tabular classifier.",
    epilog=example("petalops train && petalops serve"),
    cls=CommandGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"petalops {petalops.__version__}")
        raise typer.Exit()


@app.callback(context_settings=CONTEXT)
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_print_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Train, register, serve, roll out and monitor a tabular classifier."""


@app.command("version", epilog=example("petalops version --sbom > sbom.cdx.json"))
def version_cmd(
    sbom: Annotated[
        bool,
        typer.Option(
            "--sbom",
            help="Print the CycloneDX SBOM (JSON) of the installed packages: the one the "
            "image build shipped, else one made now from this environment (needs "
            "cyclonedx-bom). Where it came from goes to stderr.",
        ),
    ] = False,
) -> None:
    """Print the petalops version, or with --sbom the software bill of materials."""
    if not sbom:
        typer.echo(f"petalops {petalops.__version__}")
        return
    from petalops import sbom as bill

    found = bill.read()
    sys.stderr.write(f"petalops {petalops.__version__}: SBOM {found.origin}\n")
    sys.stdout.write(found.text if found.text.endswith("\n") else found.text + "\n")


app.command("train", epilog=example("petalops train --data flowers.csv --set model.params.C=0.5"))(
    train_cmd.train
)
app.command("predict", epilog=example("petalops predict --input '[5.1,3.5,1.4,0.2]' --proba"))(
    predict_cmd.predict
)
app.command("config", epilog=example("petalops config --set seed=7"))(train_cmd.show_config)
app.command("serve", epilog=example("petalops serve --port 8000 --workers 2"))(serve_cmd.serve)
app.add_typer(registry_cmd.app, name="registry")
app.add_typer(rollout_cmd.app, name="rollout")
app.add_typer(monitor_cmd.app, name="monitor")
app.add_typer(demo_cmd.app, name="demo")
app.add_typer(keys_cmd.app, name="keys")
keys_cmd.app.add_typer(signing_cmd.app, name="signing")  # the signing keys of model bundles
app.command("audit", epilog=example("petalops audit --action rollout --limit 20"))(audit_cmd.audit)
app.command("reproduce", epilog=example("petalops reproduce champion"))(experiments_cmd.reproduce)
app.command("tune", epilog=example("petalops tune --param C=0.1,1,10 --cv 5"))(experiments_cmd.tune)
app.command("export", epilog=example("petalops export champion --output model.onnx"))(
    experiments_cmd.export
)
app.command("ui", epilog=example("petalops ui --port 5000"))(experiments_cmd.ui)
app.add_typer(experiments_cmd.runs_app, name="runs")


def main() -> None:
    """Console entry point: usage and domain errors become one line and an exit code."""
    sys.exit(run_guarded(app))
