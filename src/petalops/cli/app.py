"""The `petalops` command. Every sub-command is a thin wrapper around a library function.

Heavy libraries (MLflow, scikit-learn, pandas) are imported inside the commands that need
them, so `petalops --help`, `predict`, `registry list` and the other everyday commands start
fast (tests/unit/cli/test_imports.py keeps them out).
"""

from __future__ import annotations

import sys
from typing import Annotated, ClassVar

import typer

import petalops
from petalops.cli.common import Lazy, LazyGroup, example, finish, run_guarded

# -h beside --help, in every sub-command too (a context passes it on to its children).
CONTEXT = {"help_option_names": ["-h", "--help"]}


class Petalops(LazyGroup):
    """`petalops`: each sub-command's module is imported when that sub-command is used."""

    lazy: ClassVar[dict[str, Lazy]] = {
        "train": Lazy(
            "petalops.cli.train",
            "train",
            example("petalops train --data flowers.csv --set model.params.C=0.5"),
        ),
        "predict": Lazy(
            "petalops.cli.predict",
            "predict",
            example("petalops predict --input '[5.1,3.5,1.4,0.2]' --proba"),
        ),
        "config": Lazy(
            "petalops.cli.train", "show_config", example("petalops config --set seed=7")
        ),
        "serve": Lazy(
            "petalops.cli.serve", "serve", example("petalops serve --port 8000 --workers 2")
        ),
        "audit": Lazy(
            "petalops.cli.audit", "audit", example("petalops audit --action rollout --limit 20")
        ),
        "reproduce": Lazy(
            "petalops.cli.experiments", "reproduce", example("petalops reproduce champion")
        ),
        "tune": Lazy(
            "petalops.cli.experiments", "tune", example("petalops tune --param C=0.1,1,10 --cv 5")
        ),
        "export": Lazy(
            "petalops.cli.experiments",
            "export",
            example("petalops export champion --output model.onnx"),
        ),
        "ui": Lazy("petalops.cli.experiments", "ui", example("petalops ui --port 5000")),
        "registry": Lazy("petalops.cli.registry", "app"),
        "rollout": Lazy("petalops.cli.rollout", "app"),
        "monitor": Lazy("petalops.cli.monitor", "app"),
        "demo": Lazy("petalops.cli.demo", "app"),
        "keys": Lazy("petalops.cli.keys", "app"),  # with `keys signing`
        "runs": Lazy("petalops.cli.experiments", "runs_app"),
    }


app = typer.Typer(
    name="petalops",
    help="Train, register, serve, roll out and monitor a tabular classifier.",
    epilog=example("petalops train && petalops serve"),
    cls=Petalops,
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


def main() -> None:
    """Console entry point: usage and domain errors become one line and an exit code."""
    finish(run_guarded(app))
