"""The `petalops` command tree: every command refuses bad usage in one line with exit 2, and
has `-h`/`--help` with real metavars and an example; `--version`; shell completion.

The commands are discovered from the Typer app, so a new command is covered without a list
to keep up to date.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from petalops import __version__
from petalops.cli.app import app
from petalops.cli.common import run_guarded, walk


def _tree() -> list[tuple[tuple[str, ...], Any]]:
    return list(walk(typer.main.get_command(app)))


COMMANDS = [path for path, cmd in _tree() if path and not hasattr(cmd, "commands")]
GROUPS = [path for path, cmd in _tree() if hasattr(cmd, "commands")]


def _ids(path: tuple[str, ...]) -> str:
    return " ".join(path) or "petalops"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run_guarded(app, args)
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    assert err.startswith("error: ") and err.endswith("\n"), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_the_tree_is_discovered() -> None:
    assert {("train",), ("serve",), ("registry", "list"), ("registry", "alias", "set")} <= set(
        COMMANDS
    )
    assert {(), ("registry",), ("registry", "alias"), ("rollout",)} <= set(GROUPS)


@pytest.mark.parametrize("path", COMMANDS, ids=_ids)
def test_every_command_refuses_an_unknown_option_in_one_line(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*path, "--no-such-option"], capsys)
    line = assert_one_error_line(code, err)
    assert f"`petalops {' '.join(path)}` has no option --no-such-option" in line
    assert f"see `petalops {' '.join(path)} --help`" in line
    assert out == ""


@pytest.mark.parametrize("path", COMMANDS + GROUPS, ids=_ids)
@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_everywhere_with_real_metavars(
    path: tuple[str, ...], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*path, flag], capsys)
    assert (code, err) == (0, "")
    assert re.search(rf"Usage: petalops {' '.join(path)}".rstrip(), out)
    # Typer's own type labels (<bool>, <list[str]>, <int range>) never show.
    assert not re.search(r"<(bool|str|int|float|path|list|dir|file)\b", out), out


@pytest.mark.parametrize("path", COMMANDS, ids=_ids)
def test_every_command_has_an_example_of_itself(path: tuple[str, ...]) -> None:
    command = dict(_tree())[path]
    assert command.epilog, f"petalops {' '.join(path)} has no example"
    assert command.epilog.startswith(f"Example: petalops {' '.join(path)}")


@pytest.mark.parametrize("path", GROUPS, ids=_ids)
def test_a_bare_group_prints_its_help_and_exits_2(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(list(path), capsys)
    assert (code, err) == (2, "")
    assert "Commands" in out
    assert out.count("Usage:") == 1, out  # once, not twice


@pytest.mark.parametrize("path", GROUPS, ids=_ids)
def test_an_unknown_command_is_one_line(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run([*path, "nosuchcommand"], capsys)
    line = assert_one_error_line(code, err)
    assert f"`{' '.join(('petalops', *path))}` has no command 'nosuchcommand'" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # `petalops version` comes close too (difflib: 0.5); the nearest is named first.
        (["tarin"], "did you mean `petalops train`"),
        (["registry", "lst"], "did you mean `petalops registry list`"),
        (["rollout", "stauts"], "did you mean `petalops rollout status`"),
        (["train", "--dat", "x.csv"], "did you mean --data?"),
        (["registry", "list", "--jsn"], "did you mean --json?"),
    ],
)
def test_the_closest_valid_name_is_suggested(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(args, capsys)
    assert expected in assert_one_error_line(code, err)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["predict"], "`petalops predict` needs --input; example: petalops predict --input"),
        (["predict", "--input"], "option '--input' requires an argument; example: petalops"),
        (["registry", "show"], "`petalops registry show` needs VERSION; example:"),
        (["rollout", "history", "--limit", "x"], "invalid value for '--limit'"),
        (["serve", "--port", "99999"], "invalid value for '--port'"),
        (["serve", "--port", "0"], "greater than or equal to 1"),
        (["serve", "--workers", "0"], "invalid value for '--workers'"),
        (["predict", "--input", "[1]", "--engine", "gpu"], "invalid value for '--engine'"),
        (["config", "stray"], "`petalops config` takes no further arguments (got stray)"),
    ],
)
def test_bad_usage_is_one_line_naming_the_fix(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(args, capsys)
    assert expected in assert_one_error_line(code, err)
    assert out == ""


def test_bare_petalops_prints_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([], capsys)
    assert (code, err) == (2, "")
    assert "Usage: petalops" in out and "train" in out and "--version" in out
    assert out.count("Usage:") == 1, out


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([flag], capsys) == (0, f"petalops {__version__}\n", "")


def petalops(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    return subprocess.run(
        [sys.executable, "-m", "petalops", *args],
        cwd=cwd,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# One bad usage per command, run as the console script is: a real process, so nothing the
# in-process runner catches (or a `sys.exit` inside Typer) can hide a traceback.
BAD_USAGE = [
    *([*path, "--no-such-option"] for path in COMMANDS),
    *([*path, "nosuchcommand"] for path in GROUPS),
    ["serve", "--port", "99999"],
    ["serve", "--workers"],
    ["train", "--set", "no-equals-sign"],
    ["train", "--set", "nosuchkey=1"],
    ["rollout", "history", "--limit", "many"],
]


@pytest.mark.slow
@pytest.mark.parametrize("args", BAD_USAGE, ids=" ".join)
def test_the_console_script_refuses_bad_usage_in_one_line(args: list[str], tmp_path: Path) -> None:
    out = petalops(args, tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert not any(tmp_path.iterdir()), "nothing is created by a usage error"


@pytest.mark.parametrize("args", [["--version"], ["-h"], ["registry", "--help"]], ids=" ".join)
def test_the_console_script_answers_version_and_help_with_0(
    args: list[str], tmp_path: Path
) -> None:
    out = petalops(args, tmp_path)
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout


def test_shell_completion_installs_and_completes(tmp_path: Path) -> None:
    # Typer finds the shell to install for among the process's parents (shellingham): run
    # it from a bash, as a user would, not from whatever started pytest (nohup, a CI agent).
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    installed = subprocess.run(
        ["bash", "-c", f"{shlex.quote(sys.executable)} -m petalops --install-completion; exit $?"],
        cwd=tmp_path,
        env={**environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "petalops.sh" in (tmp_path / ".bashrc").read_text()
    words = petalops(
        [],
        tmp_path,
        _PETALOPS_COMPLETE="complete_bash",
        COMP_WORDS="petalops registry l",
        COMP_CWORD="2",
    )
    assert words.stdout.split() == ["list"]
