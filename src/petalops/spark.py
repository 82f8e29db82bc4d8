"""Batch scoring on Apache Spark with the same verified bundle as the server and local scoring.

The driver resolves the model in the registry, fetches its bundle and checks every file's
sha256 once; the bundle directory is then shipped to the executors with ``SparkFiles`` and
checked again where it is opened. Each executor's Python worker scores Arrow record batches
(``mapInArrow`` for ``petalops predict --engine spark``, an Arrow UDF for ``predict_udf``)
through the same `Scorer` and runtime as local scoring: the model's coefficients in numpy or
ONNX Runtime, never an unpickled model and never pandas or scikit-learn per batch.

    from petalops.spark import predict_udf
    udf = predict_udf(spark, "models:/iris@champion")
    df.withColumn("prediction", udf(*udf.features))
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from py4j.protocol import Py4JJavaError
from pyspark import SparkFiles, TaskContext
from pyspark.errors import AnalysisException, PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import types as T
from pyspark.sql.functions import (  # type: ignore[attr-defined]  # not in pyspark 4.3's stubs
    arrow_udf,
    col,
)
from pyspark.sql.pandas.types import to_arrow_schema
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from threadpoolctl import threadpool_limits

from petalops import errors
from petalops.batch import (
    PARQUET_SUFFIXES,
    PROBA_PREFIX,
    Scorer,
    ScoreStats,
    check_keep,
    scored_names,
)
from petalops.config import Settings, load_settings
from petalops.errors import ConfigError, InputError, IntegrityError, PetalopsError
from petalops.registry.resolve import SHA_TAG, fetch_bundle, resolve
from petalops.runtime.bundle import verify_bundle
from petalops.runtime.model import ModelRuntime, open_bundle

Result = Literal["class", "index", "proba"]

# Rows per Arrow batch handed to the Python workers. Spark's default (10,000) makes the
# per-batch cost of the JVM <-> Python round trip a large share of scoring a linear model.
ARROW_BATCH_ROWS = 65_536

_GLOB = re.compile(r"[*?\[{]")
_PARTITION = re.compile(r"^([^=/]+)=([^/]*)$")
_REMOTE_ERROR = re.compile(r"petalops\.errors\.(\w+): (.+)")


class SparkJobError(PetalopsError):
    """A Spark job that failed for a reason other than petalops's own checks."""

    exit_code = 1


@dataclass(frozen=True)
class ShippedBundle:
    """What an executor needs to find, verify and open a bundle: names and hashes only."""

    file_name: str  # the directory's name under SparkFiles
    sha256: str
    name: str
    version: str
    features: tuple[str, ...]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class SparkScoreStats(ScoreStats):
    """Rows and wall time of a Spark scoring job, and how its output is laid out."""

    tasks: int = 0
    partition_by: tuple[str, ...] = field(default_factory=tuple)


def check_java() -> None:
    """Spark needs a JVM; say so in one line before PySpark fails with a stack of its own."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        if not (Path(java_home) / "bin" / "java").is_file():
            raise ConfigError(
                f"JAVA_HOME={java_home} has no bin/java; point it at a Java 17+ installation "
                "or unset it"
            )
        return
    if shutil.which("java") is None:
        raise ConfigError(
            "Spark needs Java 17 or newer and no `java` is on PATH (JAVA_HOME is not set): "
            "install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )


def _java_version() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else "java"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stderr or out.stdout).splitlines()[0] if (out.stderr or out.stdout) else "?"


def session(
    master: str = "local[*]",
    conf: dict[str, str] | None = None,
    app_name: str = "petalops",
    quiet: bool = True,
) -> SparkSession:
    """A SparkSession for scoring: Spark's console progress off (petalops shows its own),
    larger Arrow batches, on a local master workers that run this Python, and with
    ``quiet`` the driver's log lines off (``spark.log.level=WARN`` turns them on)."""
    check_java()
    if master.startswith("local"):
        # Spark starts `python3` from PATH by default, which outside an activated virtualenv
        # is another interpreter, without petalops.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # A local job talks to itself only: bind to loopback (and skip Spark's warning that
        # the host name resolves to it).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = {
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
        **(conf or {}),
    }
    if quiet:
        log4j = resources.files("petalops").joinpath("spark-log4j2.properties")
        option = f"-Dlog4j2.configurationFile={log4j}"
        user = settings.get("spark.driver.extraJavaOptions", "")
        settings["spark.driver.extraJavaOptions"] = f"{option} {user}".strip()
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except PySparkException as exc:
        if "JAVA_GATEWAY_EXITED" in str(exc):
            raise ConfigError(
                f"the Spark JVM did not start (java: {_java_version()}; Spark 4 needs Java 17 "
                "or newer); its own messages are above"
            ) from None
        raise


def model_reference(model: str) -> str:
    """``models:/iris@champion`` (MLflow's form) or ``iris@champion`` -> ``iris@champion``."""
    return model.removeprefix("models:/").strip("/")


def _stage(settings: Settings, directory: Path, shipped: ShippedBundle) -> Path:
    """A copy of the verified bundle under a name unique to its content, for SparkFiles.

    SparkFiles names a shipped directory by its base name, and a bundle's cache directory
    is just its version number, the same for every model."""
    staged = settings.cache_dir / "spark" / shipped.file_name
    if staged.is_dir():
        try:
            verify_bundle(staged, shipped.sha256)
            return staged
        except IntegrityError:
            shutil.rmtree(staged)
    staged.parent.mkdir(parents=True, exist_ok=True)
    partial_dir = staged.with_name(f".{shipped.file_name}-{uuid.uuid4().hex[:8]}")
    shutil.copytree(directory, partial_dir)
    try:
        partial_dir.rename(staged)
    except OSError:  # another process staged it first; its copy is as good
        shutil.rmtree(partial_dir, ignore_errors=True)
    return staged


@dataclass(frozen=True)
class Bundle:
    """A bundle verified on the driver: what executors are told, and the staged copy."""

    shipped: ShippedBundle
    staged: Path


def prepare_bundle(settings: Settings, model: str | None) -> Bundle:
    """Resolve ``model``, fetch its bundle and check every file's sha256 (no Spark needed)."""
    info = resolve(settings, model_reference(model) if model else None)
    if not info.sha256:
        raise IntegrityError(
            f"version {info.version} of {info.name!r} has no {SHA_TAG} tag; it was not "
            "registered by petalops and cannot be verified"
        )
    directory = fetch_bundle(settings, info)
    try:
        runtime = open_bundle(directory, info.name, info.version, info.sha256)
    except IntegrityError:
        shutil.rmtree(directory, ignore_errors=True)  # the next load fetches a fresh copy
        raise
    shipped = ShippedBundle(
        file_name=f"petalops-{info.name}-v{info.version}-{info.sha256[:16]}",
        sha256=info.sha256,
        name=info.name,
        version=info.version,
        features=tuple(runtime.features),
        classes=tuple(runtime.classes),
    )
    return Bundle(shipped=shipped, staged=_stage(settings, directory, shipped))


def ship(spark: SparkSession, bundle: Bundle) -> ShippedBundle:
    """Make the bundle's directory available to every executor through ``SparkFiles``."""
    context = spark.sparkContext
    name = bundle.shipped.file_name
    if not any(f.rstrip("/").endswith("/" + name) for f in context.listFiles):
        context.addFile(str(bundle.staged), recursive=True)
    return bundle.shipped


def ship_bundle(spark: SparkSession, settings: Settings, model: str | None) -> ShippedBundle:
    """Resolve ``model``, verify its bundle on the driver and ship it to every executor."""
    return ship(spark, prepare_bundle(settings, model))


# One opened runtime per bundle per Python worker process (Spark reuses workers across
# tasks), so a bundle is verified once where it is loaded, not once per batch.
_RUNTIMES: dict[tuple[str, str], ModelRuntime] = {}


def executor_runtime(shipped: ShippedBundle) -> ModelRuntime:
    """The shipped bundle opened on this executor, after checking its files' sha256 again."""
    key = (shipped.file_name, shipped.sha256)
    runtime = _RUNTIMES.get(key)
    if runtime is None:
        directory = Path(SparkFiles.get(shipped.file_name))
        try:
            runtime = open_bundle(directory, shipped.name, shipped.version, shipped.sha256)
        except IntegrityError as exc:
            raise IntegrityError(
                f"the bundle of {shipped.name} v{shipped.version} failed verification on "
                f"executor {socket.gethostname()}: {exc.message}"
            ) from None
        _RUNTIMES[key] = runtime
    return runtime


def _where(label: str) -> str:
    context = TaskContext.get()
    return f"{label} (partition {context.partitionId()})" if context else label


def _score_batches(
    batches: Iterator[pa.RecordBatch],
    *,
    shipped: ShippedBundle,
    with_proba: bool,
    keep: Sequence[str],
    label: str,
    rows: Any,
    schema: pa.Schema,
) -> Iterator[pa.RecordBatch]:
    """The ``mapInArrow`` function: runs on the executors."""
    scorer = Scorer(
        executor_runtime(shipped),
        with_proba=with_proba,
        keep=keep,
        where=_where(label),
        dictionary=False,
    )
    seen = 0
    with threadpool_limits(limits=1, user_api="blas"):
        for batch in batches:
            yield pa.RecordBatch.from_arrays(scorer(batch, seen), schema=schema)
            seen += batch.num_rows
    rows.add(seen)


def _spark_fields(shipped: ShippedBundle, with_proba: bool) -> list[T.StructField]:
    names = scored_names(shipped.classes, with_proba)
    kinds: list[T.DataType] = [T.StringType(), T.LongType()]
    kinds += [T.DoubleType()] * (len(names) - 2)
    return [T.StructField(n, k, nullable=False) for n, k in zip(names, kinds, strict=True)]


def check_columns(df: DataFrame, shipped: ShippedBundle, where: str) -> None:
    """Every feature of the model must be a column of ``df``; one line names the missing."""
    missing = [f for f in shipped.features if f not in df.columns]
    if missing:
        raise InputError(f"{where} lacks column(s) {missing}; it has {df.columns}")


def score_dataframe(
    df: DataFrame,
    shipped: ShippedBundle,
    *,
    with_proba: bool = False,
    keep: Sequence[str] = (),
    label: str = "input",
    rows: Any = None,
) -> DataFrame:
    """``df`` scored: its ``keep`` columns, ``prediction``, ``prediction_index`` and, with
    ``with_proba``, one ``proba_<class>`` column per class (lazy, like any DataFrame)."""
    check_columns(df, shipped, label)
    keep = check_keep(keep, df.columns, classes=shipped.classes, with_proba=with_proba, where=label)
    wanted = list(dict.fromkeys([*shipped.features, *keep]))
    kept = [df.schema[k] for k in keep]
    schema = T.StructType([*kept, *_spark_fields(shipped, with_proba)])
    if rows is None:
        rows = df.sparkSession.sparkContext.accumulator(0)
    function = partial(
        _score_batches,
        shipped=shipped,
        with_proba=with_proba,
        keep=keep,
        label=label,
        rows=rows,
        schema=to_arrow_schema(schema),
    )
    return df.select(*[col(f"`{name}`") for name in wanted]).mapInArrow(function, schema)


def input_format(source: str) -> str:
    """``parquet`` or ``csv``, from the path's suffix (a directory: from its files)."""
    base = source.rstrip("/")
    suffix = Path(urllib.parse.urlparse(base).path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    local = _local_path(base)
    if local is not None and local.is_dir():
        suffixes = {
            p.suffix.lower()
            for p in local.rglob("*")
            if p.is_file() and not p.name.startswith(("_", "."))
        }
        if ".csv" in suffixes and suffixes & PARQUET_SUFFIXES:
            raise InputError(
                f"--input {source} holds both CSV and Parquet files; name one kind with a "
                f"glob, e.g. {base}/*.parquet"
            )
        if suffixes == {".csv"}:
            return "csv"
    return "parquet"


def _local_path(path: str) -> Path | None:
    parsed = urllib.parse.urlparse(path)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    if not parsed.scheme or len(parsed.scheme) == 1:  # no scheme, or a Windows drive
        return Path(path)
    return None


def read_input(spark: SparkSession, source: str) -> DataFrame:
    """Parquet or CSV (with a header line) from any path Spark reads: file, directory, glob."""
    check_input(source)
    try:
        if input_format(source) == "csv":
            # Every CSV column is read as text, as in local scoring: the scorer parses the
            # features and kept columns stay exactly as written.
            return spark.read.option("header", True).csv(source)
        return spark.read.parquet(source)
    except (AnalysisException, Py4JJavaError) as exc:
        raise InputError(f"--input {source}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    """The first line of what Spark says, without the JVM's stack trace."""
    text = str(exc)
    if isinstance(exc, Py4JJavaError):
        with contextlib.suppress(Exception):
            text = str(exc.java_exception.getMessage())
    text = text.strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


def partition_columns(df: DataFrame) -> list[str]:
    """The Hive-style partition columns (``day=2024-05-01/``) shared by every input file."""
    layouts = set()
    for name in df.inputFiles():
        segments = urllib.parse.urlparse(name).path.split("/")[:-1]
        keys = tuple(
            urllib.parse.unquote(m.group(1)) for s in segments if (m := _PARTITION.match(s))
        )
        layouts.add(tuple(k for k in keys if k in df.columns))
        if len(layouts) > 1:
            return []
    return list(layouts.pop()) if layouts else []


def _remote_error(exc: BaseException) -> PetalopsError | None:
    """The petalops error an executor raised, from the text Spark wraps it in."""
    matches = _REMOTE_ERROR.findall(str(exc))
    for name, message in reversed(matches):
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, PetalopsError):
            return kind(message.strip())
    return None


class _Filesystem:
    """The Hadoop filesystem of a path, through the session's JVM (any scheme Spark reads)."""

    def __init__(self, spark: SparkSession, path: str) -> None:
        context = spark.sparkContext
        jvm: Any = context._jvm
        self._path = jvm.org.apache.hadoop.fs.Path(path)
        self._fs = self._path.getFileSystem(context._jsc.hadoopConfiguration())

    def exists(self) -> bool:
        return bool(self._fs.exists(self._path))

    def delete(self) -> None:
        self._fs.delete(self._path, True)


def check_input(source: str) -> None:
    """A local ``--input`` must exist and hold one kind of file (remote ones: Spark says)."""
    local = _local_path(source)
    if local is not None and not _GLOB.search(source) and not local.exists():
        raise InputError(f"--input {source} does not exist")
    input_format(source)


def check_paths(source: str, destination: str) -> None:
    """What can be checked about ``--input`` and ``--output`` before Spark starts (local
    paths only; remote ones are checked through Spark's filesystem)."""
    check_input(source)
    if destination.rstrip("/").lower().endswith(".csv"):
        raise InputError(
            f"--output {destination}: the Spark engine writes a Parquet directory; "
            "name it without .csv"
        )
    out = _local_path(destination)
    if out is not None and not out.absolute().parent.is_dir():
        raise InputError(
            f"--output {destination}: the directory {out.absolute().parent} does not exist; "
            "create it first"
        )
    if out is not None and out.exists():
        raise InputError(
            f"--output {destination} already exists; remove it or choose another directory"
        )


class _Progress:
    """A Rich bar over the tasks of a job group, fed by Spark's status tracker."""

    def __init__(self, spark: SparkSession, group: str, title: str) -> None:
        self._tracker = spark.sparkContext.statusTracker()
        self._group = group
        self._bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            "tasks",
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._task = self._bar.add_task(title, total=None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="petalops-progress", daemon=True)
        self.tasks = 0

    def __enter__(self) -> _Progress:
        self._bar.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._bar.stop()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.poll()

    def poll(self) -> None:
        total = done = 0
        for job in self._tracker.getJobIdsForGroup(self._group):
            info = self._tracker.getJobInfo(job)
            for stage in info.stageIds if info else []:
                stage_info = self._tracker.getStageInfo(stage)
                if stage_info is not None:
                    total += stage_info.numTasks
                    done += stage_info.numCompletedTasks
        if total:
            self.tasks = total
            self._bar.update(self._task, total=total, completed=done)


class SparkJob:
    """``petalops predict --engine spark``: everything that needs no Spark is checked when
    the job is made (paths, model, bundle), so a mistake costs no JVM start-up."""

    def __init__(
        self,
        settings: Settings,
        source: str,
        destination: str,
        *,
        model: str | None = None,
        with_proba: bool = False,
        keep: Sequence[str] = (),
    ) -> None:
        check_paths(source, destination)
        self.bundle = prepare_bundle(settings, model)
        self.source = source
        self.destination = destination
        self.with_proba = with_proba
        self.keep = list(keep)

    def run(self, spark: SparkSession, *, progress: bool = False) -> SparkScoreStats:
        """Score ``source`` into the Parquet directory ``destination``, partitioned like the
        input; nothing is left behind if it fails."""
        start = time.perf_counter()
        source, where = self.source, f"--input {self.source}"
        filesystem = _Filesystem(spark, self.destination)
        if filesystem.exists():
            raise InputError(
                f"--output {self.destination} already exists; remove it or choose another directory"
            )
        shipped = ship(spark, self.bundle)
        df = read_input(spark, source)
        check_columns(df, shipped, where)
        check_keep(
            self.keep,
            df.columns,
            classes=shipped.classes,
            with_proba=self.with_proba,
            where=where,
        )
        partition_by = [c for c in partition_columns(df) if c not in shipped.features]
        context = spark.sparkContext
        rows = context.accumulator(0)
        scored = score_dataframe(
            df,
            shipped,
            with_proba=self.with_proba,
            keep=[*self.keep, *(c for c in partition_by if c not in self.keep)],
            label=source,
            rows=rows,
        )
        group = f"petalops-{uuid.uuid4().hex[:12]}"
        context.setJobGroup(group, f"petalops predict {shipped.name} v{shipped.version} {source}")
        writer = scored.write.mode("errorifexists").option("compression", "snappy")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        watcher = _Progress(spark, group, f"scoring with {shipped.name} v{shipped.version}")
        try:
            if progress:
                with watcher:
                    writer.parquet(self.destination)
            else:
                writer.parquet(self.destination)
            watcher.poll()
        except Exception as exc:
            with contextlib.suppress(Exception):  # never hide the error being reported
                filesystem.delete()
            remote = _remote_error(exc)
            if remote is not None:
                raise remote from None
            if isinstance(exc, PySparkException | Py4JJavaError):
                raise SparkJobError(f"the Spark job failed: {_first_line(exc)}") from None
            raise
        finally:
            context.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
        return SparkScoreStats(
            rows=int(rows.value),
            seconds=time.perf_counter() - start,
            tasks=watcher.tasks,
            partition_by=tuple(partition_by),
        )


def score_path(
    spark: SparkSession,
    settings: Settings,
    source: str,
    destination: str,
    *,
    model: str | None = None,
    with_proba: bool = False,
    keep: Sequence[str] = (),
    progress: bool = False,
) -> SparkScoreStats:
    """Score Parquet/CSV at ``source`` (file, directory or glob) into the Parquet directory
    ``destination`` with a running session (see `SparkJob`)."""
    job = SparkJob(settings, source, destination, model=model, with_proba=with_proba, keep=keep)
    return job.run(spark, progress=progress)


@dataclass(frozen=True)
class PredictUDF:
    """A column function scoring with a shipped, verified bundle (see `predict_udf`)."""

    shipped: ShippedBundle
    result: Result = "class"

    @property
    def features(self) -> list[str]:
        """The model's feature columns, in the order the function takes them."""
        return list(self.shipped.features)

    @property
    def classes(self) -> list[str]:
        return list(self.shipped.classes)

    @property
    def return_type(self) -> T.DataType:
        if self.result == "class":
            return T.StringType()
        if self.result == "index":
            return T.LongType()
        return T.StructType(
            [T.StructField(f"{PROBA_PREFIX}{c}", T.DoubleType()) for c in self.shipped.classes]
        )

    def __call__(self, *columns: Column | str) -> Column:
        """``udf(*cols)`` -> the prediction column; no arguments means the feature columns."""
        cols = columns or tuple(self.features)
        if len(cols) != len(self.shipped.features):
            raise InputError(
                f"{self.shipped.name} v{self.shipped.version} takes {len(self.shipped.features)} "
                f"columns ({', '.join(self.shipped.features)}), got {len(cols)}"
            )
        shipped, result = self.shipped, self.result
        proba_fields = [pa.field(f"{PROBA_PREFIX}{c}", pa.float64()) for c in shipped.classes]

        def predict(*arrays: pa.Array) -> pa.Array:
            # Arrow arrays in, Arrow array out: no pandas, the same Scorer as everywhere.
            names = shipped.features
            batch = pa.RecordBatch.from_arrays(list(arrays), names=list(names))
            scorer = Scorer(
                executor_runtime(shipped),
                with_proba=result == "proba",
                where=_where(f"predict_udf({shipped.name} v{shipped.version})"),
                dictionary=False,
            )
            with threadpool_limits(limits=1, user_api="blas"):
                out = scorer(batch, 0)
            if result == "class":
                return out[0]
            if result == "index":
                return out[1]
            return pa.StructArray.from_arrays(out[2:], fields=proba_fields)

        function = arrow_udf(predict, returnType=self.return_type)
        column: Column = function(*(col(c) if isinstance(c, str) else c for c in cols))
        return column


def predict_udf(
    spark: SparkSession,
    model: str,
    *,
    result: Result = "class",
    settings: Settings | None = None,
) -> PredictUDF:
    """A column function for your own Spark jobs, like ``mlflow.pyfunc.spark_udf`` but with
    the verified bundle and the compiled runtime: ``df.withColumn("prediction", udf(*cols))``.

    ``model`` is ``models:/iris@champion``, ``iris@champion`` or ``iris/3``; ``result`` picks
    the column: ``class`` (the class name), ``index`` (its index) or ``proba`` (a struct of
    one ``proba_<class>`` field per class). ``settings`` default to the project's
    (``petalops.yaml`` and ``PETALOPS_*``), which say where the registry is.
    """
    if result not in ("class", "index", "proba"):
        raise InputError(f"result={result!r} is not one of 'class', 'index', 'proba'")
    shipped = ship_bundle(spark, settings or load_settings(), model)
    return PredictUDF(shipped=shipped, result=result)
