"""`petalops predict`: one row, several rows, or a whole file, through the serving runtime."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from petalops.cli.common import ConfigOption, SetOption, settings_from
from petalops.errors import InputError


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


def predict(
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="JSON row(s) like '[5.1,3.5,1.4,0.2]', or a .csv/.parquet file."
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write predictions for a file input."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="iris@champion (default), iris/3, …")
    ] = None,
    proba: Annotated[
        bool, typer.Option("--proba", help="Also write class probabilities (file input).")
    ] = False,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1000, help="Rows per streamed record batch.")
    ] = 1_000_000,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Predict with a registered version, using the same compiled runtime as the server."""
    from petalops.registry import load_runtime

    settings = settings_from(config, overrides)
    path = Path(input)
    is_file = path.suffix.lower() in {".csv", ".parquet", ".pq"} or path.is_file()
    if not is_file:
        if output is not None:
            raise InputError("--output needs a file --input (.csv or .parquet)")
        runtime = load_runtime(settings, model)
        rows = parse_rows(input, runtime.n_features)
        import numpy as np

        predictions = runtime.predict(np.asarray(rows, dtype=np.float64))
        typer.echo(json.dumps({"prediction": [int(p) for p in predictions]}))
        return

    from petalops.batch import score_file

    if output is None:
        raise InputError(f"--input {path} is a file; add --output preds.parquet (or .csv)")
    runtime = load_runtime(settings, model)
    stats = score_file(
        runtime, path, output, batch_rows=batch_rows, with_proba=proba, progress=True
    )
    typer.echo(
        f"scored {stats.rows:,} rows with {runtime.name} v{runtime.version} "
        f"in {stats.seconds:.2f} s ({stats.rows_per_second:,.0f} rows/s) -> {output}",
        err=True,
    )
