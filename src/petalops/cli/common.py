"""Shared CLI plumbing: options, settings loading and the error-to-exit-code table."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from petalops.config import Settings, load_settings
from petalops.errors import PetalopsError

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (default: ./petalops.yaml).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a setting, e.g. --set model.params.C=0.5 (repeatable)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def settings_from(config: Path | None, overrides: list[str] | None) -> Settings:
    return load_settings(config, overrides or [])


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def run_guarded(app: typer.Typer) -> int:
    """Run the Typer app; a PetalopsError prints one line and maps to its exit code."""
    try:
        # In non-standalone mode click returns the code of a `typer.Exit(n)` instead of exiting.
        code = app(standalone_mode=False)
        if isinstance(code, int):
            return code
    except PetalopsError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return exc.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code or 0)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        # The serve-only image (and a serve-only install) leaves the training stack out.
        # A module of petalops itself missing is a packaging bug: keep its traceback.
        if (exc.name or "petalops").split(".")[0] == "petalops":
            raise
        sys.stderr.write(
            f"error: this command needs the Python package {exc.name!r}, which this install "
            "leaves out (the serve-only image carries serving only); use the full image "
            "or `pip install petalops`\n"
        )
        return 2
    except Exception as exc:  # click usage errors, MLflow failures and friends
        import click

        if any(c.__name__ == "MlflowException" for c in type(exc).__mro__):
            first = str(exc).splitlines()[0] if str(exc) else "unknown error"
            if "Max retries exceeded" in first or "Connection refused" in first:
                first = "the MLflow server is unreachable (check PETALOPS_MLFLOW_URI): " + first
            sys.stderr.write(f"error: MLflow: {first[:400]}\n")
            return 1

        if isinstance(exc, click.exceptions.UsageError):
            exc.show()
            return 2
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0
