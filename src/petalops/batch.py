"""Score CSV / Parquet files in streamed record batches: memory stays bounded on any size."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from petalops.errors import InputError
from petalops.runtime.model import ModelRuntime


@dataclass(frozen=True)
class ScoreStats:
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def _batches(path: Path, features: list[str], batch_rows: int) -> tuple[Any, int | None]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    try:
        if suffix in {".parquet", ".pq"}:
            parquet = pq.ParquetFile(path)
            names = parquet.schema_arrow.names
            missing = [f for f in features if f not in names]
            if missing:
                raise InputError(f"{path} lacks column(s) {missing}; it has {names}")
            return parquet.iter_batches(batch_size=batch_rows, columns=features), (
                parquet.metadata.num_rows
            )
        if suffix == ".csv":
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=32 << 20),
                convert_options=pacsv.ConvertOptions(
                    include_columns=features,
                    column_types=dict.fromkeys(features, pa.float64()),
                ),
            )
            return reader, None
    except InputError:
        raise
    except (pa.ArrowInvalid, pa.ArrowTypeError, KeyError, OSError) as exc:
        raise InputError(
            f"{path} cannot be read as scoring input: {str(exc).splitlines()[0]}"
        ) from None
    raise InputError(f"input file {path} must end in .csv or .parquet")


def _matrix(batch: Any, features: list[str], first_row: int, path: Path) -> np.ndarray:
    columns = []
    for name in features:
        column = batch.column(name)
        if column.null_count:
            raise InputError(
                f"{path}: column {name!r} has a missing value near row {first_row + 1}"
            )
        try:
            columns.append(column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
        except (TypeError, ValueError):
            raise InputError(f"{path}: column {name!r} is not numeric") from None
    x = np.column_stack(columns)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0][0])
        raise InputError(f"{path}: row {first_row + bad + 1} has NaN or infinity")
    return x


def score_file(
    runtime: ModelRuntime,
    source: Path,
    destination: Path,
    *,
    batch_rows: int = 1_000_000,
    with_proba: bool = False,
    progress: bool = False,
) -> ScoreStats:
    """Read → predict → write, one record batch at a time; the output appears atomically."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out_suffix = destination.suffix.lower()
    if out_suffix not in {".parquet", ".pq", ".csv"}:
        raise InputError(f"--output {destination} must end in .parquet or .csv")
    start = time.perf_counter()
    try:
        batches, total = _batches(source, runtime.features, batch_rows)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{source}: {str(exc).splitlines()[0]}") from None
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.partial-{os.getpid()}")
    fields = [pa.field("prediction", pa.int64())]
    if with_proba:
        fields += [pa.field(f"proba_{c}", pa.float64()) for c in runtime.classes]
    schema = pa.schema(fields)
    writer: Any = (
        pacsv.CSVWriter(partial, schema)
        if out_suffix == ".csv"
        else pq.ParquetWriter(partial, schema, compression="snappy")
    )
    rows = 0
    bar = None
    if progress:
        from rich.console import Console
        from rich.progress import Progress

        bar = Progress(transient=True, console=Console(stderr=True))
        bar.start()
        task = bar.add_task(f"scoring {source.name}", total=total)
    try:
        for batch in batches:
            x = _matrix(batch, runtime.features, rows, source)
            if with_proba:
                proba = runtime.predict_proba(x)
                arrays = [pa.array(proba.argmax(axis=1).astype(np.int64))]
                arrays += [pa.array(proba[:, j]) for j in range(proba.shape[1])]
            else:
                arrays = [pa.array(runtime.predict(x))]
            writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
            rows += len(x)
            if bar is not None:
                bar.update(task, completed=rows)
        writer.close()
        os.replace(partial, destination)
    except pa.ArrowInvalid as exc:
        raise InputError(f"{source}: {str(exc).splitlines()[0]}") from None
    finally:
        if bar is not None:
            bar.stop()
        if partial.exists():
            writer.close()
            partial.unlink()
    return ScoreStats(rows=rows, seconds=time.perf_counter() - start)
