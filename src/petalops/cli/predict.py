"""`petalops predict`: one row, several rows, or a whole file, through the serving runtime."""

from __future__ import annotations

import enum
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from petalops.cli.common import ConfigOption, SetOption, settings_from, skip_teardown
from petalops.errors import InputError

if TYPE_CHECKING:
    from petalops.config import Settings


def parse_rows(text: str, n_features: int | None = None) -> list[list[float]]:
    """``[5.1,3.5,1.4,0.2]`` or ``[[...],[...]]`` -> rows of floats, with a clear error."""
    example = "[5.1,3.5,1.4,0.2] or [[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InputError(
            f"--input is neither a file nor JSON; example: --input '{example}'"
        ) from None
    rows = (
        [value] if isinstance(value, list) and value and not isinstance(value[0], list) else value
    )
    if not isinstance(rows, list) or not rows:
        raise InputError(f"--input must be a JSON list of numbers or of rows; example: {example}")
    out: list[list[float]] = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in row
        ):
            raise InputError(f"row {i} of --input is not a list of numbers; example: {example}")
        if n_features is not None and len(row) != n_features:
            raise InputError(
                f"row {i} of --input has {len(row)} values, the model expects {n_features}; "
                f"example: {example}"
            )
        floats = [float(v) for v in row]
        if any(f != f or f in (float("inf"), float("-inf")) for f in floats):
            raise InputError(f"row {i} of --input has NaN or infinity; use finite numbers")
        out.append(floats)
    return out


class Engine(enum.StrEnum):
    local = "local"
    spark = "spark"


def _spark_conf(pairs: list[str]) -> dict[str, str]:
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(
                f"--spark-conf {pair!r} is not KEY=VALUE; example: --spark-conf "
                "spark.executor.memory=4g"
            )
        conf[key.strip()] = value
    return conf


def predict(
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            metavar="JSON|PATH",
            help="JSON row(s) like '[5.1,3.5,1.4,0.2]', or a .csv/.parquet file; with "
            "--engine spark any path Spark reads (file, directory, glob, s3a://, hdfs://).",
        ),
    ],
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="PATH",
            help="Where to write predictions of a file input (.parquet or .csv; a Parquet "
            "directory with --engine spark).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", metavar="NAME@ALIAS", help="iris@champion (default), iris/3, …"
        ),
    ] = None,
    proba: Annotated[
        bool, typer.Option("--proba", help="Also give one probability per class.")
    ] = False,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            "-k",
            metavar="COLUMN",
            help="Copy this input column (an id) to the output file (repeatable).",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option("--engine", help="local: this process; spark: an Apache Spark job."),
    ] = Engine.local,
    master: Annotated[
        str,
        typer.Option(
            "--master",
            metavar="URL",
            help="Spark master: local[*], spark://host:7077, yarn, k8s://https://…",
        ),
    ] = "local[*]",
    spark_conf: Annotated[
        list[str] | None,
        typer.Option(
            "--spark-conf",
            metavar="KEY=VALUE",
            help="A Spark setting KEY=VALUE, e.g. spark.executor.instances=4 (repeatable).",
        ),
    ] = None,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1000, help="Rows per streamed record batch.")
    ] = 1_000_000,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            metavar="PATH",
            help="Also write the data-quality profile of the scored file (.json: the "
            "training profile's layout, data-quality checks and drift against it; .html: "
            "the drift report).",
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Predict with a registered version, using the same compiled runtime as the server."""
    skip_teardown()  # only reads, or writes through closed files (`finish`)
    from petalops.registry import load_runtime

    settings = settings_from(config, overrides)
    keep = keep or []
    if profile is not None and engine is Engine.spark:
        raise InputError("--profile works with --engine local; score a sample locally for one")
    if engine is Engine.spark:
        _predict_spark(settings, input, output, model, proba, keep, master, spark_conf or [])
        return
    path = Path(input)
    is_file = path.suffix.lower() in {".csv", ".parquet", ".pq"} or path.is_file()
    if not is_file:
        if output is not None:
            raise InputError("--output needs a file --input (.csv or .parquet)")
        if keep:
            raise InputError("--keep needs a file --input (.csv or .parquet) to copy columns from")
        if profile is not None:
            raise InputError("--profile needs a file --input (.csv or .parquet) to profile")
        runtime = load_runtime(settings, model)
        import numpy as np

        if runtime.mixed:  # categorical features: strings and nulls, checked by the schema
            from petalops.serving.rows import typed_rows

            try:
                parsed = json.loads(input)
            except json.JSONDecodeError:
                raise InputError("--input is neither a file nor JSON") from None
            x = np.asarray(typed_rows(parsed, runtime, "--input"), dtype=object)
            runtime.check_unseen(x)
        else:
            x = np.asarray(parse_rows(input, runtime.n_features), dtype=np.float64)
        if not proba:
            typer.echo(json.dumps({"prediction": [int(p) for p in runtime.predict(x)]}))
            return
        probabilities = runtime.predict_proba(x)
        answer = {
            "prediction": [int(p) for p in runtime.decide(probabilities)],
            "classes": runtime.classes,
            "probabilities": probabilities.tolist(),
        }
        typer.echo(json.dumps(answer))
        return

    from petalops.batch import check_output_file, score_file

    if output is None:
        raise InputError(f"--input {path} is a file; add --output preds.parquet (or .csv)")
    destination = Path(output)
    check_output_file(destination)
    profiler = None
    if profile is not None:
        from petalops.monitoring.batchprofile import check_profile_file

        check_profile_file(Path(profile))
    runtime = load_runtime(settings, model)
    if profile is not None:
        from petalops.monitoring.batchprofile import BatchProfile
        from petalops.registry import load_profile

        training = load_profile(settings, f"{runtime.name}/{runtime.version}")
        profiler = BatchProfile(
            runtime, training, settings.monitor, source=str(path), seed=settings.seed
        )
    stats = score_file(
        runtime,
        path,
        destination,
        batch_rows=batch_rows,
        with_proba=proba,
        keep=keep,
        progress=sys.stderr.isatty(),
        observe=profiler.add if profiler is not None else None,
    )
    typer.echo(
        f"scored {stats.rows:,} rows with {runtime.name} v{runtime.version} "
        f"in {stats.seconds:.2f} s ({stats.rows_per_second:,.0f} rows/s) -> {output}",
        err=True,
    )
    if profiler is not None and profile is not None:
        written = profiler.write(Path(profile))
        if written.suffix.lower() == ".json":
            quality = profiler.data_quality()
            verdict = {True: "passed", False: "FAILED", None: "not judged"}[quality.passed]
            failures = f" ({'; '.join(quality.failures)})" if quality.failures else ""
            typer.echo(f"profile -> {profile}: data quality {verdict}{failures}", err=True)
        else:
            typer.echo(f"drift report -> {profile}", err=True)


def _predict_spark(
    settings: Settings,
    source: str,
    output: str | None,
    model: str | None,
    proba: bool,
    keep: list[str],
    master: str,
    spark_conf: list[str],
) -> None:
    if output is None:
        raise InputError("--engine spark needs --output, a Parquet directory to create")
    conf = _spark_conf(spark_conf)
    if importlib.util.find_spec("pyspark") is None:
        raise InputError(
            "--engine spark needs PySpark, which this install leaves out: "
            "pip install 'petalops[spark]'"
        )
    # PySpark 4.3 warns, at every session, that it does not "yet fully support" pandas 3;
    # scoring goes through Arrow and never hands pandas objects to Spark.
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    # PySpark (and the JVM behind it) loads only for this engine.
    from petalops import spark as engine

    engine.check_java()
    job = engine.SparkJob(settings, source, output, model=model, with_proba=proba, keep=keep)
    started = time.perf_counter()
    session = engine.session(master, conf, app_name=f"petalops predict {source}")
    try:
        stats = job.run(session, progress=sys.stderr.isatty())
    finally:
        session.stop()
    layout = f", partitioned by {', '.join(stats.partition_by)}" if stats.partition_by else ""
    typer.echo(
        f"scored {stats.rows:,} rows on Spark {master} ({stats.tasks} tasks) in "
        f"{stats.seconds:.2f} s ({stats.rows_per_second:,.0f} rows/s; "
        f"{time.perf_counter() - started:.1f} s with Spark's start-up) -> {output}{layout}",
        err=True,
    )
