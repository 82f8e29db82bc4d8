"""Batch scoring and CLI start-up, next to a baseline measured in the same run.

    python bench/predict_batch.py [--rows 10000000] [--runs 3] [--no-train]
    python bench/predict_batch.py --model forest     # a tree ensemble (ONNX Runtime)
    python bench/predict_batch.py --model penguins   # categorical features, missing values
    python bench/predict_batch.py --model penguins --rows 300000 --baseline ../other-checkout

Prints, for a Parquet file of ROWS Iris-like rows scored end to end (read → predict → write):
rows/s and peak RSS of `petalops predict --input F --output G` and of the baseline (plain
pyarrow read + pandas + scikit-learn `predict` + write, the usual hand-written script), each in
its own process, the median of ``--runs`` interleaved runs, wall time from the process's
start to its exit (interpreter start-up and imports included), and the fixed cost of a run
(`petalops predict` of a one-row file); with ``--baseline DIR``, also `petalops predict` of
that checkout (its ``src`` with its ``.venv``) on the same file, to compare two versions of
the code in one run. Then the wall time of `petalops train` (warm install; ``--no-train``
skips it) and of `petalops predict --input` for one row. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.apps.models import MODELS, features, penguins_frame, prepare_project  # noqa: E402

# The same model as a scikit-learn Pipeline (bench.apps.models), read with pyarrow + pandas.
BASELINE = r"""
import sys, pandas as pd, pyarrow.parquet as pq
sys.path.insert(0, sys.argv[4])
from bench.apps.models import features, sklearn_model
model = sklearn_model(sys.argv[3])
frame = pq.read_table(sys.argv[1]).to_pandas()
pd.DataFrame({"prediction": model.predict(frame[features(sys.argv[3])])}).to_parquet(sys.argv[2])
"""


def make_input(path: Path, rows: int, model: str = "iris") -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_iris

    if path.exists() and pq.ParquetFile(path).metadata.num_rows == rows:
        return
    if model == "penguins":
        # penguin rows drawn with replacement, numbers jittered; NAs and categories kept
        base = penguins_frame()
        rng = np.random.default_rng(0)
        with pq.ParquetWriter(path, pa.Schema.from_pandas(base[features(model)])) as writer:
            for start in range(0, rows, 1_000_000):
                n = min(1_000_000, rows - start)
                frame = base.iloc[rng.integers(0, len(base), n)][features(model)].copy()
                for name in features(model)[1:5]:
                    frame[name] = frame[name] + rng.normal(0, 0.5, n)
                table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
                writer.write_table(table)
        return
    base = load_iris().data
    names = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    rng = np.random.default_rng(0)
    chunk = 1_000_000
    with pq.ParquetWriter(path, pa.schema([(n, pa.float64()) for n in names])) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.1, (n, 4))
            writer.write_table(pa.table({name: x[:, j] for j, name in enumerate(names)}))


def prepare(path: Path, rows: int, model: str) -> None:
    """`make_input` in a process of its own: a child's peak RSS counts the pages it shares
    with this process when it starts, so this one must stay small."""
    code = "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
    code += "from bench.predict_batch import make_input; "
    code += "make_input(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])"
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(path), str(rows), model], check=True)


def measure(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stderr of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"{' '.join(cmd)} failed: {err[-500:]}")
    err = process.stderr.read().decode() if process.stderr else ""
    return seconds, usage.ru_maxrss / 1024, err.strip()


def _median_run(runs: list[tuple[float, float, str]]) -> tuple[float, float, str]:
    """The run of median wall time (its RSS and report with it)."""
    return sorted(runs, key=lambda r: r[0])[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the small timings")
    parser.add_argument("--runs", type=int, default=3, help="runs of the big file, each")
    parser.add_argument("--no-train", action="store_true", help="skip the `petalops train` timing")
    parser.add_argument("--model", choices=MODELS, default="iris", help="see bench.apps.models")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (with its .venv) whose `petalops predict` scores the same file",
    )
    args = parser.parse_args()
    # each model's project (registry, petalops.yaml) in a directory of its own
    out = OUT if args.model == "iris" else OUT / args.model
    out.mkdir(parents=True, exist_ok=True)
    petalops = [sys.executable, "-m", "petalops"]
    source = out / f"{args.model}-{args.rows}.parquet"
    print(f"preparing {args.rows:,} rows in {source} …", flush=True)
    prepare(source, args.rows, args.model)
    overrides = [part for o in prepare_project(args.model, out) for part in ("--set", o)]

    if not (out / ".petalops" / "mlflow.db").exists() or not args.no_train:
        train_times = [
            measure([*petalops, "train", *overrides], out)[0]
            for _ in range(1 if args.no_train else args.repeat)
        ]
    one_row = (
        [
            measure([*petalops, "predict", "--input", "[5.1,3.5,1.4,0.2]"], out)[0]
            for _ in range(args.repeat)
        ]
        if args.model != "penguins"
        else []
    )
    # The fixed cost of a run (interpreter, imports, model load, writer): one row scored.
    tiny = out / f"{args.model}-1.parquet"
    prepare(tiny, 1, args.model)
    startup = [
        measure(
            [*petalops, "predict", "--input", str(tiny), "--output", str(out / "t.parquet")], out
        )
        for _ in range(args.repeat)
    ]
    commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "ours": (
            [*petalops, "predict", "--input", str(source), "--output", str(out / "p.parquet")],
            None,
        ),
        "base": (
            [
                sys.executable,
                "-c",
                BASELINE,
                str(source),
                str(out / "b.parquet"),
                args.model,
                str(ROOT),
            ],
            None,
        ),
    }
    if args.baseline is not None:
        checkout = args.baseline.resolve()
        commands["other"] = (
            [
                *(str(checkout / ".venv" / "bin" / "python"), "-m", "petalops", "predict"),
                *("--input", str(source), "--output", str(out / "o.parquet")),
            ],
            {**os.environ, "PYTHONPATH": str(checkout / "src")},
        )
    runs: dict[str, list[tuple[float, float, str]]] = {name: [] for name in commands}
    for _ in range(args.runs):  # taking turns: all see the same drift of the load
        for name, (command, env) in commands.items():
            runs[name].append(measure(command, out, env))
    ours_runs, base_runs = runs["ours"], runs["base"]
    ours, base = _median_run(ours_runs), _median_run(base_runs)
    results = [
        ("petalops predict (streamed, compiled)", ours),
        ("baseline: pyarrow + pandas + sklearn", base),
    ]
    if args.baseline is not None:
        results.append(
            (f"petalops predict of {args.baseline.resolve().name}", _median_run(runs["other"]))
        )
    load = os.getloadavg()
    print(
        f"\nbatch scoring, {args.model}, {args.rows:,} rows, Parquet → predict → Parquet "
        f"(one process each, median of {args.runs} interleaved runs; wall time from process "
        f"start to exit, interpreter start-up included); load average {load[0]:.2f} "
        f"{load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
    )
    print(f"{'':38} {'wall s':>8} {'M rows/s':>9} {'peak RSS MiB':>13}")
    for label, (seconds, rss, _) in results:
        print(f"{label:38} {seconds:8.2f} {args.rows / seconds / 1e6:9.2f} {rss:13.0f}")
    print(f"speed-up {base[0] / ours[0]:.1f}x, memory {base[1] / ours[1]:.1f}x less")
    print(
        f"every run, petalops: {[round(r[0], 2) for r in ours_runs]} s, "
        f"baseline: {[round(r[0], 2) for r in base_runs]} s"
    )
    fixed = statistics.median(r[0] for r in startup)
    print(
        f"fixed cost of a run (petalops predict of a 1-row file): median {fixed:.2f} s "
        f"of {[round(r[0], 2) for r in startup]}, peak RSS {startup[0][1]:.0f} MiB"
    )
    print(f"petalops's own report (excluding interpreter start-up): {ours[2].splitlines()[-1]}")
    rate = args.rows / ours[0] / 1e6
    print(
        f"issue #18 goal 4: >= 8 M rows/s including start-up: {rate:.2f} "
        f"({'met' if rate >= 8 else 'not met'}); peak RSS < 600 MiB: {ours[1]:.0f} "
        f"({'met' if ours[1] < 600 else 'not met'})"
    )
    if args.baseline is not None:
        print(f"{results[-1][0]}'s own report: {results[-1][1][2].splitlines()[-1]}")
    if not args.no_train:
        print(
            f"\npetalops train ({args.model}, warm install): "
            f"median {statistics.median(train_times):.2f} s "
            f"of {[round(t, 2) for t in train_times]}"
        )
    if one_row:
        print(
            f"petalops predict --input one row:     median {statistics.median(one_row):.2f} s "
            f"of {[round(t, 2) for t in one_row]}"
        )


if __name__ == "__main__":
    main()
