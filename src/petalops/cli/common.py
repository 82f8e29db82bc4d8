"""Shared CLI plumbing: options, settings loading, help that reads well, and the one error path.

Every way a command line can be wrong (unknown command or option, missing argument, bad or
out-of-range value) and every :class:`~petalops.errors.PetalopsError` ends in
:func:`run_guarded`: one line ``error: …`` on stderr naming the fix, and the exit code of the
error table (2 for usage and input errors). Nothing is started before the line is printed.
"""

from __future__ import annotations

import atexit
import contextlib
import difflib
import importlib
import json
import os
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, NoReturn

import typer

# Typer 0.29 vendors Click as `typer._click` and re-exports none of its usage-error classes
# (only BadParameter); these are the ones its parser raises.
from typer._click.core import Context
from typer._click.exceptions import (
    BadOptionUsage,
    MissingParameter,
    NoArgsIsHelpError,
    NoSuchOption,
    UsageError,
)
from typer.core import TyperArgument, TyperGroup, TyperOption

from petalops.errors import PetalopsError

if TYPE_CHECKING:
    from petalops.config import Settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", metavar="PATH", help="Settings file (default: ./petalops.yaml)."
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a setting, e.g. --set model.params.C=0.5 (repeatable).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

EXAMPLE = "Example: "


def settings_from(config: Path | None, overrides: list[str] | None) -> Settings:
    # Imported here, not at the top: pydantic-settings and the settings models cost ~0.3 s,
    # which a usage error, `--help` or `--version` must not pay (bench/cli.py).
    from petalops.config import load_settings

    return load_settings(config, overrides or [])


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def reading(settings: Settings) -> Settings:
    """Settings for a read-only command: a monitoring database that is not there yet (a
    SQLite file) reads as an empty one, in memory, instead of being created on disk."""
    url = settings.monitor_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        monitor = settings.monitor.model_copy(update={"db_url": "sqlite://"})
        return settings.model_copy(update={"monitor": monitor})
    return settings


def fail(message: str, code: int = 2) -> None:
    """Print one line to stderr and exit."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(code)


def example(line: str) -> str:
    """A command's epilog: the example line its help ends with and its usage errors quote."""
    return EXAMPLE + line


class UnknownCommand(UsageError):
    """A command name the group does not have, with the closest ones it does."""

    def __init__(self, name: str, close: list[str], ctx: Context) -> None:
        super().__init__(f"No such command {name!r}.", ctx)
        self.name = name
        self.close = close


class CommandGroup(TyperGroup):
    """A command group whose unknown sub-command names the closest valid ones."""

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=2, cutoff=0.5)
            raise UnknownCommand(name, close, ctx)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            # The option parser raises some errors (an option missing its value) without a
            # context; give them the sub-command's, so the line names it and its example.
            sub = self.get_command(ctx, ctx.invoked_subcommand or "")
            if exc.ctx is None and sub is not None:
                exc.ctx = Context(sub, info_name=ctx.invoked_subcommand, parent=ctx)
            raise


def group(help: str) -> typer.Typer:
    """A sub-command group (`petalops registry`, …): bare, it prints its help. Completion is
    installed by the root command only."""
    return typer.Typer(help=help, no_args_is_help=True, cls=CommandGroup, add_completion=False)


@dataclass(frozen=True)
class Lazy:
    """A sub-command of `LazyGroup` built only when it is used: ``module``'s ``attribute``,
    a `typer.Typer` group or a command function (with its ``epilog``)."""

    module: str
    attribute: str
    epilog: str | None = None


class LazyGroup(CommandGroup):
    """The root command: its sub-commands are imported and built the first time they are
    looked up, not all at start-up.

    Typer builds a Click command from every registered function's signature (evaluating
    each annotation), which for the ~70 commands and groups of this CLI took more time than
    the everyday command itself did; click's own documentation recommends a lazily loading
    group for large CLIs. A subclass names its sub-commands in ``lazy``, in help order.
    """

    lazy: ClassVar[dict[str, Lazy]] = {}

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in self.lazy if n not in self.commands)]

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in self.lazy:
            return command
        spec = self.lazy[cmd_name]
        target = getattr(importlib.import_module(spec.module), spec.attribute)
        # Registered on a throw-away group as they were on the root before, so Typer builds
        # them just as it did (a group of one command stays a group, `runs compare`).
        holder = typer.Typer(add_completion=False)
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=cmd_name)
        else:
            holder.command(cmd_name, epilog=spec.epilog)(target)
        holder.callback()(lambda: None)
        command = typer.main.get_command(holder).commands[cmd_name]  # type: ignore[attr-defined]
        _polish(command, Context(command, info_name=cmd_name, parent=ctx))
        self.add_command(command, cmd_name)
        return command


# -- help -------------------------------------------------------------------------------------

_TYPE_NAMES = {int: "INTEGER", float: "FLOAT", str: "TEXT", bool: "BOOLEAN"}


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the tree under ``command`` (itself first), with its name path; the
    sub-commands of a `LazyGroup` are built on the way."""
    yield path, command
    if hasattr(command, "commands"):
        ctx = _root_context(command)
        for name in sorted(command.list_commands(ctx)):
            yield from walk(command.get_command(ctx, name), (*path, name))


def _type_label(param: TyperOption | TyperArgument) -> str:
    """``INTEGER``, ``PATH``, ``local|spark``… for a parameter declared without a metavar."""
    descriptor = param.type_descriptor
    if descriptor.is_choice and descriptor.choices:
        return "|".join(str(getattr(c, "value", c)) for c in descriptor.choices)
    if descriptor.is_path:
        return "PATH"
    annotation = descriptor.annotation
    if descriptor.is_list:
        annotation = getattr(annotation, "__args__", (str,))[0]
    return _TYPE_NAMES.get(annotation, "TEXT")


def _root_context(command: Any) -> Context:
    return Context(command, info_name="petalops", **command.context_settings)


def polish_help(command: Any) -> None:
    """Real metavars in every help screen: ``INTEGER``, ``PATH``, ``NAME@ALIAS``, nothing for a
    flag, instead of Typer 0.29's ``<int>``, ``<bool>`` and ``<list[str]>``.

    A metavar given where the option is declared wins. Typer renders an argument's type
    column from its annotation whatever its metavar, so that column is pointed at the label
    here too (help output only).
    """
    _polish(command, _root_context(command))


def _polish(command: Any, ctx: Context) -> None:
    # Built as a real invocation would build them: the help option a command creates (and
    # keeps) takes its names (-h, --help) from the context, which inherits its parent's.
    for sub_name, sub in getattr(command, "commands", {}).items():
        _polish(sub, Context(sub, info_name=sub_name, parent=ctx, **sub.context_settings))
    for param in command.get_params(ctx):
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else _type_label(param)
        elif isinstance(param, TyperArgument):
            label = param.metavar or _type_label(param)
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            setattr(param, "display_type_rich", lambda ctx, label=label: label)  # noqa: B010


# -- errors -----------------------------------------------------------------------------------


def _example_of(ctx: Context | None) -> str | None:
    epilog = getattr(ctx.command, "epilog", None) if ctx is not None else None
    if epilog and epilog.startswith(EXAMPLE):
        return str(epilog.removeprefix(EXAMPLE)).strip()
    return None


def _options_of(ctx: Context) -> list[str]:
    return [opt for p in ctx.command.get_params(ctx) for opt in (*p.opts, *p.secondary_opts)]


def _one_of(names: Sequence[str]) -> str:
    return " or ".join(names)


def usage_error_line(exc: UsageError) -> str:
    """The one line a usage error prints: what was wrong, and the fix (the closest valid
    command or option, an example, or where the help is)."""
    ctx = exc.ctx
    where = ctx.command_path if ctx is not None else "petalops"
    see = f"see `{where} --help`"
    shown = _example_of(ctx)
    fix = f"example: {shown}" if shown else see
    if isinstance(exc, UnknownCommand):
        close = ", ".join(f"`{where} {c}`" for c in exc.close)
        hint = f"did you mean {close}? ({see} for the list)" if close else f"{see} for the list"
        return f"`{where}` has no command {exc.name!r}; {hint}"
    if isinstance(exc, NoSuchOption):
        known = {o.lstrip("-"): o for o in (_options_of(ctx) if ctx is not None else [])}
        near = [
            known[c] for c in difflib.get_close_matches(exc.option_name.lstrip("-"), known, n=2)
        ]
        hint = (
            f"did you mean {_one_of(near)}? ({see} for the list)" if near else f"{see} for the list"
        )
        return f"`{where}` has no option {exc.option_name}; {hint}"
    if isinstance(exc, MissingParameter):
        param = exc.param
        if isinstance(param, TyperOption):
            what = _one_of([o for o in param.opts if o.startswith("--")] or param.opts)
        else:
            what = param.metavar if param is not None and param.metavar else "an argument"
        return f"`{where}` needs {what}; {fix}"
    if isinstance(exc, BadOptionUsage):
        return f"`{where}`: {_lower_first(exc.format_message().rstrip('.'))}; {fix}"
    message = _lower_first(exc.format_message().rstrip("."))
    extra = re.fullmatch(r"got unexpected extra argument(?:\(s\)|s)? \((.*)\)", message)
    if extra:
        return f"`{where}` takes no further arguments (got {extra[1]}); {fix}"
    return f"{message}; {see}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


_teardown = {"skip": False}


def skip_teardown() -> None:
    """Have `finish` end this process without the interpreter's teardown.

    After `petalops train`, CPython's finalization (freeing every module and object of
    MLflow, scikit-learn, SciPy and pandas, ~400 MB) took 0.8-0.9 s, a fifth of the
    command, with nothing left to do; after the everyday commands 50-60 ms. Only for a
    command whose files are all closed by the time it returns or raises (`finish` runs
    after that): one that only reads, or writes through ``with`` blocks and renames.
    """
    _teardown["skip"] = True


def finish(code: int) -> NoReturn:
    """End the process with ``code``: `sys.exit`, or, after `skip_teardown`, the atexit
    handlers (logging's flush, MLflow's, temporary files' cleanup) and the standard streams'
    flush, then `os._exit`. A non-daemon thread still running means a normal exit, which
    waits for it."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if not _teardown["skip"] or any(not t.daemon for t in others):
        sys.exit(code)
    _flush()
    atexit._run_exitfuncs()
    _flush()  # what the handlers printed
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`), stream
            stream.flush()


def run_guarded(app: typer.Typer, args: Sequence[str] | None = None) -> int:
    """Run the Typer app; every usage error and PetalopsError prints one line and maps to its
    exit code. Bare ``petalops`` (or a bare group) prints its help, the most useful answer, but
    exits 2 as Click does: nothing was asked, so a script calling it is told it is wrong."""
    command = typer.main.get_command(app)
    polish_help(command)
    try:
        # In non-standalone mode click returns the code of a `typer.Exit(n)` instead of exiting.
        code = command.main(
            args=list(sys.argv[1:] if args is None else args),
            prog_name="petalops",
            standalone_mode=False,
        )
        if isinstance(code, int):
            return code
    except NoArgsIsHelpError as exc:
        # The error is made from `ctx.get_help()`, which with Rich (Typer's default) has
        # already printed the help and left the message empty; without Rich the message is
        # the help text. Either way the help is shown once.
        if exc.message:
            typer.echo(exc.message)
        return 2
    except UsageError as exc:
        sys.stderr.write(f"error: {usage_error_line(exc)}\n")
        return 2
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
    except typer.TyperException as exc:  # click's FileError and friends: not usage errors
        sys.stderr.write(f"error: {_lower_first(exc.format_message())}\n")
        return exc.exit_code
    except Exception as exc:  # MLflow failures
        if any(c.__name__ == "MlflowException" for c in type(exc).__mro__):
            first = str(exc).splitlines()[0] if str(exc) else "unknown error"
            if "Max retries exceeded" in first or "Connection refused" in first:
                first = "the MLflow server is unreachable (check PETALOPS_MLFLOW_URI): " + first
            sys.stderr.write(f"error: MLflow: {first[:400]}\n")
            return 1
        raise
    return 0
