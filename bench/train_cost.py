"""Where the time of `petalops train` on Iris goes, in one run: per step and per import.

    python bench/train_cost.py [--runs 3]

Each run is its own process in a throw-away project (the first run registers v1, the later
ones v2, v3 … against that champion, as a real second `petalops train` does), started with
``python -X importtime``. It prints, as medians over the runs:

* the wall and CPU seconds of each step of ``pipeline.run.train`` (the imports a step
  triggers are inside it: ``load`` imports pandas, scikit-learn and pandera, then the other
  steps' modules: the ONNX converter, MLflow; ``gate`` opens MLflow's SQLAlchemy store to
  find the champion; ``track`` logs the run, its files and the stock flavour); the
  ``total`` is the process's, from the interpreter's start (its CPU from ``getrusage``);
* the import time of each top-level package, summed over its modules' own time
  (``-X importtime`` "self"), so that what is left to cut can be named.

The issue's goal is ≤ 5 s of wall time on a quiet machine; the CPU column is what the run
costs whatever else the machine runs. The load average before and after is printed. Nothing
here asserts on time.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

DRIVER = """
import json, resource, sys, time
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
# Each mark names the stretch that starts at it.
marks = [("import config, pipeline.run", time.perf_counter(), cpu())]
from petalops.config import load_settings
from petalops.pipeline.run import train
marks.append(("load settings", time.perf_counter(), cpu()))
def on_step(name):
    marks.append((name, time.perf_counter(), cpu()))
result = train(load_settings(None, []), on_step=on_step)
marks.append(("end", time.perf_counter(), cpu()))
assert result.version, "nothing registered"
print(json.dumps(marks))
"""
_IMPORT = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def one_run(home: Path) -> tuple[dict[str, tuple[float, float]], dict[str, float], float, float]:
    """(step -> (wall, cpu)), (package -> import seconds), total wall, total CPU of one run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    env |= {"PETALOPS_HOME": str(home), "GIT_PYTHON_REFRESH": "quiet"}
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", DRIVER],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    marks = json.loads(out.stdout.strip().splitlines()[-1])
    steps: dict[str, tuple[float, float]] = {}
    for (name, wall, cpu), (_, wall2, cpu2) in itertools.pairwise(marks):
        steps[name] = (wall2 - wall, cpu2 - cpu)
    packages: collections.Counter[str] = collections.Counter()
    for line in out.stderr.splitlines():
        match = _IMPORT.match(line)
        if match:
            packages[match[4].split(".")[0]] += int(match[1]) / 1e6
    return steps, dict(packages), marks[-1][1] - marks[0][1], marks[-1][2]


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="trained versions (1 + champion)")
    parser.add_argument("--packages", type=int, default=16, help="how many packages to list")
    args = parser.parse_args()
    before = load_average()
    runs = []
    with tempfile.TemporaryDirectory(prefix="petalops-bench-train-") as tmp:
        home = Path(tmp) / ".petalops"
        one_run(home)  # v1 @champion: the timed runs train against a champion
        for n in range(args.runs):
            print(f"run {n + 1}/{args.runs}", file=sys.stderr)
            runs.append(one_run(home))
    print(f"\n`petalops train` on Iris, {args.runs} runs, medians (registering v2 … against v1)")
    print(f"load average before: {before}; after: {load_average()}\n")
    print(f"{'step':<28} {'wall s':>7} {'cpu s':>7}")
    for name in runs[0][0]:
        walls = [r[0][name][0] for r in runs if name in r[0]]
        cpus = [r[0][name][1] for r in runs if name in r[0]]
        print(f"{name:<28} {statistics.median(walls):7.2f} {statistics.median(cpus):7.2f}")
    wall = statistics.median(r[2] for r in runs)
    cpu = statistics.median(r[3] for r in runs)
    print(f"{'total (process)':<28} {wall:7.2f} {cpu:7.2f}\n")
    names = collections.Counter[str]()
    for _, packages, _, _ in runs:
        names.update(packages)
    print(f"{'imported package':<28} {'self s':>7}   (sum of -X importtime self times)")
    for name, _ in names.most_common(args.packages):
        seconds = statistics.median(r[1].get(name, 0.0) for r in runs)
        print(f"{name:<28} {seconds:7.2f}")
    total = statistics.median(sum(r[1].values()) for r in runs)
    print(f"{'all imports':<28} {total:7.2f}")


if __name__ == "__main__":
    main()
