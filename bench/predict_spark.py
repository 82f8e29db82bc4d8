"""Batch scoring on Spark: petalops' engine against MLflow's spark_udf and the local path.

    python bench/predict_spark.py [--rows 10000000] [--files 8] [--master local[2]]

Writes ROWS Iris-like rows (an ``id`` and the four features) as FILES Parquet files, trains
and registers the Iris model (skipped when already there), then scores the same directory
three ways, each in its own process, all writing ``id`` + ``prediction`` to Parquet:

* ``petalops predict --engine spark`` (mapInArrow, the verified bundle's numpy runtime);
* ``mlflow.pyfunc.spark_udf`` on the same registered version (its scikit-learn flavour,
  unpickled on the executors, pandas per batch), in a session with the same settings;
* petalops' local path (`score_file`) over the files one after the other, in one process.

Prints, for each, the scoring time (the Spark job, without the JVM's start-up; the local
loop), rows/s, and for the whole process tree (the driver, the JVM and the Python workers
together, sampled every 0.1 s) its wall time, CPU seconds and peak RSS. CPU seconds read
better than wall time on a busy machine. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

MLFLOW_JOB = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import mlflow
from petalops import spark as ps
source, target, master = sys.argv[1:4]
spark = ps.session(master, {"spark.ui.enabled": "false"}, app_name="bench mlflow spark_udf")
udf = mlflow.pyfunc.spark_udf(spark, "models:/iris@champion", env_manager="local",
                              result_type="string")
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
start = time.perf_counter()
df = spark.read.parquet(source)
df.select("id", udf(*features).alias("prediction")).write.parquet(target)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rows": spark.read.parquet(target).count()}))
spark.stop()
"""

LOCAL_JOB = r"""
import json, sys, time
from pathlib import Path
from petalops.batch import score_file
from petalops.config import load_settings
from petalops.registry import load_runtime
source, target = Path(sys.argv[1]), Path(sys.argv[2])
runtime = load_runtime(load_settings())
target.mkdir()
start = time.perf_counter()
rows = 0
for path in sorted(source.glob("*.parquet")):
    rows += score_file(runtime, path, target / path.name, keep=["id"]).rows
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows}))
"""


def make_input(directory: Path, rows: int, files: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_iris

    parts = sorted(directory.glob("*.parquet"))
    if len(parts) == files and sum(pq.ParquetFile(p).metadata.num_rows for p in parts) == rows:
        return
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    base = load_iris().data
    rng = np.random.default_rng(0)
    start = 0
    for i in range(files):
        n = rows // files + (1 if i < rows % files else 0)
        with pq.ParquetWriter(directory / f"part-{i:04d}.parquet", _schema(pa)) as writer:
            for offset in range(0, n, 1_000_000):
                m = min(1_000_000, n - offset)
                x = base[rng.integers(0, len(base), m)] + rng.normal(0, 0.1, (m, 4))
                columns = {"id": np.arange(start, start + m, dtype=np.int64)}
                columns.update({name: x[:, j] for j, name in enumerate(FEATURES)})
                writer.write_table(pa.table(columns))
                start += m


def _schema(pa):  # type: ignore[no-untyped-def]
    return pa.schema([("id", pa.int64()), *((n, pa.float64()) for n in FEATURES)])


def _tree(root: int) -> tuple[int, dict[int, float]]:
    """Resident bytes of ``root`` and all its descendants, and each one's CPU seconds so far,
    from /proc (psutil is not a dependency of petalops, and this is all the benchmark needs
    of it)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    rss, stack, page, seen = 0, [root], os.sysconf("SC_PAGE_SIZE"), {}
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm") as handle:
                rss += int(handle.read().split()[1]) * page
        except OSError:
            pass
        seen[pid] = cpu.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return rss, seen


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, float, str, str]:
    """Wall seconds, peak RSS of the process tree (MiB), its CPU seconds (sampled every
    0.1 s, so a process living less than that is missed), stdout and stderr of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.1):
            rss, seen = _tree(process.pid)
            peak = max(peak, rss)
            for pid, seconds in seen.items():
                cpu[pid] = max(cpu.get(pid, 0.0), seconds)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({process.returncode}): {err[-2000:]}")
    return seconds, peak / 2**20, sum(cpu.values()), out, err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    python = sys.executable
    source = OUT / f"iris-spark-{args.rows}-{args.files}"
    print(f"preparing {args.rows:,} rows in {args.files} Parquet files under {source} …")
    make_input(source, args.rows, args.files)
    subprocess.run(
        [python, "-m", "petalops", "train", "--skip-if-unchanged"],
        cwd=OUT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    targets = {name: OUT / f"spark-{name}" for name in ("petalops", "mlflow", "local")}
    for target in targets.values():
        shutil.rmtree(target, ignore_errors=True)
    # spark_udf reads the same registry as petalops (the embedded store under OUT).
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{OUT / '.petalops' / 'mlflow.db'}"

    results: dict[str, tuple[float, float, float, float]] = {}
    cmd = [python, "-m", "petalops", "predict", "--engine", "spark", "--master", args.master]
    cmd += ["--input", str(source), "--output", str(targets["petalops"]), "--keep", "id"]
    cmd += ["--spark-conf", "spark.ui.enabled=false"]
    wall, rss, cpu, _, err = measure(cmd, OUT)
    summary = err.strip().splitlines()[-1]
    match = re.search(r"scored ([\d,]+) rows .* in ([\d.]+) s", summary)
    if match is None:
        raise SystemExit(f"unexpected output of petalops predict: {summary}")
    rows, seconds = int(match[1].replace(",", "")), float(match[2])
    results["petalops predict --engine spark"] = (seconds, wall, rss, cpu)
    print(f"petalops said: {summary}")

    wall, rss, cpu, out, _ = measure(
        [python, "-c", MLFLOW_JOB, str(source), str(targets["mlflow"]), args.master], OUT
    )
    report = json.loads(out.strip().splitlines()[-1])
    assert report["rows"] == rows, report
    results["mlflow.pyfunc.spark_udf"] = (report["seconds"], wall, rss, cpu)

    wall, rss, cpu, out, _ = measure(
        [python, "-c", LOCAL_JOB, str(source), str(targets["local"])], OUT
    )
    report = json.loads(out.strip().splitlines()[-1])
    assert report["rows"] == rows, report
    results["petalops local (one process)"] = (report["seconds"], wall, rss, cpu)

    print(f"\n{rows:,} rows in {args.files} Parquet files → id + prediction, Spark {args.master}")
    head = f"{'':32} {'scoring s':>10} {'M rows/s':>9} {'wall s':>8} {'CPU s':>7}"
    print(f"{head} {'peak RSS MiB':>13}")
    for label, (seconds, wall, rss, cpu) in results.items():
        line = f"{label:32} {seconds:10.2f} {rows / seconds / 1e6:9.2f} {wall:8.2f} {cpu:7.1f}"
        print(f"{line} {rss:13.0f}")
    ours = results["petalops predict --engine spark"][0]
    theirs = results["mlflow.pyfunc.spark_udf"][0]
    print(f"petalops engine vs spark_udf: {theirs / ours:.1f}x the rows/s (goal: 3x)")
    print("scoring s: the Spark job without the JVM's start-up; the local loop over the files")
    print("wall s, CPU s, peak RSS: the whole process tree (driver, JVM, Python workers)")


if __name__ == "__main__":
    main()
