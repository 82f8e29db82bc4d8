"""Start-up cost of the everyday commands, next to `python -c "import mlflow"`, in one run.

    python bench/cli.py [--runs 5] [--home DIR] [--only TEXT ...]

Trains a throw-away project (v1 @champion, v2 @challenger) in a temporary directory, or uses
``--home``; then runs each command ``--runs`` times as its own process (the order interleaved
round by round, so a burst of load elsewhere spreads over every command) and prints the
median wall time, its ratio to ``import mlflow`` (the issue's goal: ≤ 0.3), the CPU time
(user + system: what the command costs whatever else the machine runs) and the peak RSS of
the process. `petalops train` (real training, MLflow logging) is timed too: with
``--no-register``, and registering a version (the stock flavour, the registry version and
its aliases) in a copy of the project, so the other commands keep seeing v1 and v2. The load
average before and after is printed: the wall times mean little on a busy machine. Nothing
here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = sys.executable
PETALOPS = [PYTHON, "-m", "petalops"]
ONE_ROW = "[5.1,3.5,1.4,0.2]"

# (label, argv, run after each timed run and not timed: puts the state back)
Command = tuple[str, list[str], list[str] | None]
COMMANDS: list[Command] = [
    ('python -c "pass"', [PYTHON, "-c", "pass"], None),
    ('python -c "import mlflow"', [PYTHON, "-c", "import mlflow"], None),
    ("petalops --help", [*PETALOPS, "--help"], None),
    ("petalops nosuchcmd (usage error)", [*PETALOPS, "nosuchcmd"], None),
    ("petalops config", [*PETALOPS, "config"], None),
    ("petalops registry list", [*PETALOPS, "registry", "list"], None),
    ("petalops registry show champion", [*PETALOPS, "registry", "show", "champion"], None),
    ("petalops rollout status", [*PETALOPS, "rollout", "status"], None),
    ("petalops rollout history", [*PETALOPS, "rollout", "history"], None),
    (
        "petalops rollout start 2",
        [*PETALOPS, "rollout", "start", "2", "--strategy", "canary"],
        [*PETALOPS, "rollout", "abort", "--reason", "bench"],
    ),
    ("petalops monitor status", [*PETALOPS, "monitor", "status"], None),
    ("petalops predict (one row)", [*PETALOPS, "predict", "--input", ONE_ROW], None),
    ("petalops train --skip-if-unchanged", [*PETALOPS, "train", "--skip-if-unchanged"], None),
    ("petalops train --no-register", [*PETALOPS, "train", "--no-register"], None),
    # argv completed in main(): `--set home=` a copy of the project
    (TRAIN := "petalops train (registers)", [*PETALOPS, "train"], None),
]


@dataclass
class Timings:
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    codes: set[int] = field(default_factory=set)


def run_once(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak RSS (MB) and exit code of one process (os.wait4: its
    own rusage)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, process.returncode


def prepare(home: Path, env: dict[str, str]) -> None:
    """v1 @champion and v2 @challenger (other parameters), as `petalops train` makes them."""
    for extra in ([], ["--set", "model.params.C=0.3"]):
        subprocess.run(
            [*PETALOPS, "train", *extra],
            env=env,
            cwd=home.parent,
            check=True,
            stdout=sys.stderr,  # stdout is the table
        )


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command")
    parser.add_argument("--home", type=Path, help="an existing project's .petalops (trained)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="time only the commands whose label contains TEXT (repeatable; the two python "
        "baselines always run)",
    )
    args = parser.parse_args()
    commands = [
        command
        for command in COMMANDS
        if command[0].startswith("python ")
        or not args.only
        or any(t in command[0] for t in args.only)
    ]

    # What `make install` and `make run` do: petalops's own modules start from bytecode even
    # where PYTHONDONTWRITEBYTECODE is set (then nothing would write it).
    import petalops

    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", str(Path(petalops.__file__).parent)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with tempfile.TemporaryDirectory(prefix="petalops-bench-cli-") as tmp:
        home = args.home or Path(tmp) / ".petalops"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
        env |= {"PETALOPS_HOME": str(home.resolve()), "GIT_PYTHON_REFRESH": "quiet"}
        if args.home is None:
            print("training v1 and v2 in a throw-away project …", file=sys.stderr)
            prepare(home, env)
        scratch = Path(tmp) / "train-home"
        shutil.copytree(home, scratch)
        commands = [
            (label, [*argv, "--set", f"home={scratch}"] if label == TRAIN else argv, undo)
            for label, argv, undo in commands
        ]
        load_before = load_average()
        results = {label: Timings() for label, _, _ in commands}
        for round_ in range(args.runs):
            print(f"round {round_ + 1}/{args.runs}", file=sys.stderr)
            for label, argv, undo in commands:
                wall, cpu, rss, code = run_once(argv, env, home.parent)
                timing = results[label]
                timing.walls.append(wall)
                timing.cpus.append(cpu)
                timing.peak_rss_mb = max(timing.peak_rss_mb, rss)
                timing.codes.add(code)
                if undo is not None:
                    subprocess.run(undo, env=env, cwd=home.parent, capture_output=True)

    mlflow = statistics.median(results['python -c "import mlflow"'].walls)
    print(f"\n{args.runs} runs each, median wall time; ratio = wall / `import mlflow`")
    print(f"load average before: {load_before}; after: {load_average()}\n")
    print(
        f"{'command':<38} {'wall s':>7} {'min s':>7} {'ratio':>6} {'cpu s':>6} "
        f"{'peak RSS MB':>12}  exit"
    )
    for label, _, _ in commands:
        timing = results[label]
        median = statistics.median(timing.walls)
        codes = ",".join(str(c) for c in sorted(timing.codes))
        print(
            f"{label:<38} {median:7.3f} {min(timing.walls):7.3f} {median / mlflow:6.2f} "
            f"{statistics.median(timing.cpus):6.2f} {timing.peak_rss_mb:12.1f}  {codes}"
        )


if __name__ == "__main__":
    main()
