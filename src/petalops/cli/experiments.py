"""`petalops reproduce | tune | export | ui` and `petalops runs compare`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from petalops.cli.common import (
    ConfigOption,
    JsonOption,
    SetOption,
    example,
    group,
    print_json,
    settings_from,
)

runs_app = group("Look at tracked runs side by side.")

DataOption = Annotated[
    str | None,
    typer.Option("--data", metavar="PATH", help="CSV or Parquet file (default: the Iris set)."),
]


def _version_number(settings: Any, ref: str) -> str:
    from petalops.registry import resolve

    text = ref.strip()
    if text[:1] == "v" and text[1:].isdigit():
        text = text[1:]
    if text.isdigit():
        return text
    if "@" not in text and "/" not in text:
        text = f"@{text}"  # a bare alias name: champion, challenger, previous
    return resolve(settings, text).version


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def reproduce(
    version: Annotated[str, typer.Argument(help="Version number or alias (e.g. 3, champion).")],
    register: Annotated[
        bool, typer.Option("--register", help="Also register the reproduced model (gated).")
    ] = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retrain a version from its registry entry alone and check the result is bit-identical.

    Exit code 0 when metrics and fitted parameters are identical, 1 when they differ.
    """
    from rich.console import Console

    from petalops.experiments.reproduce import reproduce as run_reproduce

    settings = settings_from(config, overrides)
    number = _version_number(settings, version)
    err = Console(stderr=True)
    with err.status(f"reproducing {settings.project} v{number}…", spinner="dots") as status:
        report = run_reproduce(
            settings,
            number,
            register=register,
            on_step=lambda step: status.update(f"reproducing v{number}: {step}…"),
        )
    if as_json:
        print_json(report.to_json())
    else:
        _print_reproduction(report)
    if not report.identical:
        raise report.mismatch()


def _print_reproduction(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"reproduce {report.name} v{report.version}", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("result", overflow="fold")

    def verdict(ok: bool | None, good: str = "identical", bad: str = "DIFFERENT") -> str:
        if ok is None:
            return "[dim]n/a[/]"
        return f"[green]{good}[/]" if ok else f"[red]{bad}[/]"

    table.add_row("data", f"{report.data_sha256[:16]}… from {report.data_uri}")
    table.add_row("metrics", verdict(report.metrics_identical))
    table.add_row("fitted parameters", verdict(report.fitted_identical))
    table.add_row("train key", verdict(report.train_key_identical))
    table.add_row(
        "bundle sha256",
        verdict(
            report.bundle_identical,
            bad="differs (model.onnx bytes are not stable; compare metrics and fitted parameters)",
        ),
    )
    table.add_row("original run", report.run_id)
    table.add_row("reproduction run", report.new_run_id)
    if report.registered_version:
        table.add_row("registered", f"v{report.registered_version}")
    console.print(table)
    if report.library_diffs:
        libs = Table(title="library versions differ from the recorded ones (ran anyway)")
        for column in ("library", "recorded", "now"):
            libs.add_column(column)
        for lib, (old, new) in report.library_diffs.items():
            libs.add_row(lib, old, new)
        console.print(libs)
    else:
        console.print("library versions: same as recorded")
    for key, (old, new) in report.metric_diffs.items():
        console.print(f"[red]metric {key}[/]: recorded {_fmt(old)}, now {_fmt(new)}")
    for key, delta in report.fitted_diffs.items():
        console.print(f"[red]fitted {key}[/]: max |Δ| = {_fmt(delta)}")
    console.print(
        "[green]bit-identical reproduction[/]" if report.identical else "[red]NOT identical[/]"
    )


def tune(
    config: ConfigOption = None,
    data: DataOption = None,
    overrides: SetOption = None,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME=VALUES",
            help="Values to try, e.g. --param C=0.01,0.1,1,10 (repeatable).",
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy", metavar="grid|random", help="grid or random (default: tune.strategy)."
        ),
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", help="Random search: how many samples.")
    ] = None,
    cv: Annotated[int | None, typer.Option("--cv", help="Cross-validation folds.")] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            metavar="NAME",
            help="accuracy, f1_macro or neg_log_loss (higher is better).",
        ),
    ] = None,
    register: Annotated[
        bool,
        typer.Option("--register", help="Train the best trial through the gate and register it."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Hyperparameter search, cross-validated on the training split; each trial a nested run."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from petalops.experiments.tune import parse_param_specs
    from petalops.experiments.tune import tune as run_tune

    settings = settings_from(config, overrides)
    space = parse_param_specs(params) if params else None
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]tune"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,
    ) as progress:
        task = progress.add_task("", total=None)
        best: list[float] = []

        def on_start(total: int) -> None:
            progress.update(task, total=total)

        def on_trial(trial: Any, completed: int) -> None:
            best.append(trial.mean)
            progress.update(task, completed=completed, description=f"best {max(best):.4f}")

        result = run_tune(
            settings,
            data,
            space=space,
            strategy=strategy,
            trials=trials,
            cv=cv,
            metric=metric,
            register=register,
            on_start=on_start,
            on_trial=on_trial,
        )
    if as_json:
        print_json(result.to_json())
        return
    _print_tune(result, settings.project)


def _print_tune(result: Any, project: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    keys = sorted({k for t in result.trials for k in t.params})
    table = Table(
        title=f"{project}: {result.strategy} search, {result.cv}-fold CV on the training split, "
        f"sorted by {result.metric}"
    )
    table.add_column("#", justify="right")
    table.add_column("trial")
    for key in keys:
        table.add_column(key, justify="right")
    table.add_column(f"cv {result.metric}", justify="right")
    table.add_column("± std", justify="right")
    table.add_column("run")
    for rank, trial in enumerate(result.trials, 1):
        style = "bold green" if rank == 1 else ("cyan" if trial.label == "config" else None)
        table.add_row(
            str(rank),
            trial.label,
            *[_fmt(trial.params.get(k, "(config)")) for k in keys],
            f"{trial.mean:.4f}",
            f"{trial.std:.4f}",
            trial.run_id[:8],
            style=style,
        )
    console.print(table)
    best, base = result.best, result.baseline
    console.print(
        f"best: {best.label} {best.params or '(the configured parameters)'} "
        f"cv {result.metric} {best.mean:.4f} vs config {base.mean:.4f} "
        f"({best.mean - base.mean:+.4f}); parent run {result.parent_run_id}"
    )
    if result.train is not None:
        console.print(
            f"registered {project} v{result.train.version} as @{result.train.alias} "
            f"(held-out accuracy {result.train.metrics['accuracy']:.4f}, gate passed)"
        )
    else:
        console.print("not registered; add --register to train the best trial through the gate")


@runs_app.command(
    "compare", epilog=example("petalops runs compare champion challenger --only-diff")
)
def compare(
    runs: Annotated[
        list[str], typer.Argument(help="Run ids, versions (3, iris/3) or aliases (champion).")
    ],
    config: ConfigOption = None,
    overrides: SetOption = None,
    only_diff: Annotated[
        bool, typer.Option("--only-diff", help="Show only the parameters that differ.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Params and metrics side by side; rows that differ are highlighted."""
    from petalops.experiments.compare import compare_runs

    settings = settings_from(config, overrides)
    result = compare_runs(settings, runs)
    if as_json:
        print_json(result.to_json())
        return
    from rich.console import Console
    from rich.table import Table

    different = set(result.different)
    table = Table(title=f"{len(result.labels)} runs compared ({len(different)} rows differ)")
    table.add_column("", style="bold")
    for label, run_id in zip(result.labels, result.run_ids, strict=True):
        table.add_column(f"{label}\n{run_id[:8]}", overflow="fold")
    table.add_column("Δ")
    table.add_row("[dim]params[/]", *[""] * len(result.labels), "", end_section=False)
    for key, values in result.params.items():
        if only_diff and key not in different:
            continue
        mark = key in different
        table.add_row(
            key,
            *[_fmt(v) for v in values],
            "≠" if mark else "",
            style="bold yellow" if mark else None,
        )
    table.add_section()
    table.add_row("[dim]metrics[/]", *[""] * len(result.labels), "")
    for key, scores in result.metrics.items():
        mark = key in different
        cells = [_fmt(v) for v in scores]
        present = [v for v in scores if v is not None]
        if mark and present:
            # Highlight the best value (log_loss: lowest; everything else: highest).
            target = min(present) if "loss" in key else max(present)
            cells = [
                f"[green]{c}[/]" if v == target else c for c, v in zip(cells, scores, strict=True)
            ]
        table.add_row(key, *cells, "≠" if mark else "", style="bold yellow" if mark else None)
    Console().print(table)


def export(
    version: Annotated[str, typer.Argument(help="Version number or alias (e.g. 3, champion).")],
    fmt: Annotated[
        str, typer.Option("--format", metavar="onnx", help="Export format (onnx).")
    ] = "onnx",
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")] = Path(
        "model.onnx"
    ),
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype", metavar="float32|float64", help="Input/probability type: float32 or float64."
        ),
    ] = "float32",
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a version as a standalone ONNX file that runs under plain ONNX Runtime."""
    from petalops.experiments.export import export_onnx

    settings = settings_from(config, overrides)
    number = _version_number(settings, version)
    info = export_onnx(settings, f"{settings.project}/{number}", output, fmt=fmt, dtype=dtype)
    if as_json:
        print_json(info.to_json())
        return
    signature = info.signature()
    typer.echo(f"wrote {info.path} ({info.size_bytes} bytes, sha256 {info.file_sha256[:12]}…)")
    typer.echo(f"model   {info.name} v{info.version} (bundle {info.bundle_sha256[:12]}…)")
    for name, kind in signature["inputs"].items():
        typer.echo(f"input   {name}: {kind}  features {info.features}")
    for name, kind in signature["outputs"].items():
        extra = f"  classes {info.classes}" if name == "label" else ""
        typer.echo(f"output  {name}: {kind}{extra}")


def ui(
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port.")] = 5000,
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Interface to bind.")
    ] = "127.0.0.1",
    config: ConfigOption = None,
    overrides: SetOption = None,
    control_room: Annotated[
        bool,
        typer.Option(
            "--control-room",
            help="Serve the control room (what `petalops serve` shows at /ui) instead, "
            "for a host that only watches: registry, rollout, drift, live accuracy.",
        ),
    ] = False,
) -> None:
    """Open the MLflow UI on the embedded store: runs, datasets and the registry."""
    import signal

    if control_room:
        import uvicorn

        from petalops.ui.watch import create_watch_app

        settings = settings_from(config, overrides)
        typer.echo(f"control room at http://{host}:{port}/ui (Ctrl-C to stop)", err=True)
        uvicorn.run(create_watch_app(settings), host=host, port=port, log_level="warning")
        return

    from petalops.experiments.ui import start_ui, stop_ui, wait_until_serving

    def _terminate(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (a supervisor, `kill`) stops the server like Ctrl-C

    settings = settings_from(config, overrides)
    proc = start_ui(settings, host, port)
    url = f"http://{host}:{port}"
    signal.signal(signal.SIGTERM, _terminate)
    try:
        wait_until_serving(proc, url)
        typer.echo(f"MLflow UI for {settings.tracking_uri} at {url} (Ctrl-C to stop)", err=True)
        proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_ui(proc)
