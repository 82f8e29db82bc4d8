"""`petalops monitor drift | quality | skew | status | watch`."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
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
    reading,
    settings_from,
    skip_teardown,
)

app = group("Drift, live quality, alerts and the retraining loop.")


def _time(ts: float | None) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and 0 < abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


@app.command("drift", epilog=example("petalops monitor drift --since 1h --html drift.html"))
def drift(
    window: Annotated[
        int | None, typer.Option("--window", help="Analyse the newest N logged rows.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DURATION", help="Analyse rows of the last 90s / 15m / 1h / 2d."
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            metavar="VERSION",
            help="Only rows of this version, against its own profile.",
        ),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            "--reference",
            metavar="training|first-window",
            help="Compare with the version's training profile or its first served rows "
            "(monitor.skew_rows of them); default: monitor.drift_reference.",
        ),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Per-feature drift (KS, PSI) and predicted-class drift (chi-square) of live traffic."""
    from petalops.monitoring.firstwindow import rows_word
    from petalops.monitoring.status import current_drift
    from petalops.monitoring.store import MonitorStore

    settings = reading(settings_from(config, overrides))
    store = MonitorStore.from_settings(settings)
    try:
        result = current_drift(
            settings, store, rows=window, since=since, version=version, reference=reference
        )
    finally:
        store.close()
    report = result.report
    if html is not None:
        from petalops.monitoring.report import write_html

        write_html(html, report, result.profile, result.window.features)
    if as_json:
        print_json(report.to_json())
        return
    from rich.console import Console
    from rich.table import Table

    from petalops.monitoring.statistics import columns

    console = Console()
    data = report.to_json()
    info = data["window"]
    console.print(
        f"window: {info['rows']} rows {_time_iso(info.get('from'))} → {_time_iso(info.get('to'))}"
        f"  reference: {info['reference']} ({info['reference_rows']} "
        f"{rows_word(info.get('reference_kind', 'training'))})"
    )
    if not report.sufficient:
        console.print(f"[yellow]{report.reason}[/yellow]")
    else:
        described = ", ".join(s.description for s in report.statistics)
        table = Table(title=f"feature drift ({described})")
        statistic_columns = columns(report.statistics)
        for heading in ("feature", "drift", *(c.heading for c in statistic_columns)):
            table.add_column(heading)
        table.add_column("ref mean")
        table.add_column("live mean")
        for name, f in data["features"].items():
            table.add_row(
                name,
                "[red]yes[/red]" if f["drift"] else "no",
                *(_num(f["statistics"][c.statistic][c.key]) for c in statistic_columns),
                _num(f["reference_mean"], 3),
                _num(f["current_mean"], 3),
            )
        console.print(table)
        p = data["prediction_drift"]
        console.print(
            f"predicted classes: chi-square {_num(p['statistic'], 2)}, p-value "
            f"{_num(p['p_value'])}, drift {'[red]yes[/red]' if p['drift'] else 'no'}"
        )
        verdict = (
            "[bold red]DRIFT[/bold red]" if report.dataset_drift else "[green]no drift[/green]"
        )
        console.print(
            f"dataset: {verdict} ({info.get('drifted_features', 0)} of "
            f"{len(data['features'])} features)"
        )
    if html is not None:
        console.print(f"report written to {html}")


def _time_iso(value: str | None) -> str:
    return value or "–"


def _band(band: dict[str, Any]) -> str:
    if band["value"] is None:
        return "–"
    return f"{band['value']:.3f} [{band['low']:.3f}, {band['high']:.3f}]"


@app.command("quality", epilog=example("petalops monitor quality --since 1h --html quality.html"))
def quality(
    window: Annotated[
        int | None,
        typer.Option(
            "--window", help="The newest N rows of each version (monitor.quality_window)."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="DURATION", help="Only rows of the last 90s / 15m / 1h / 2d."
        ),
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", metavar="VERSION", help="Only this version.")
    ] = None,
    chunks: Annotated[
        int, typer.Option("--chunks", min=0, help="Estimated vs realized over N chunks of time.")
    ] = 0,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write an HTML report (estimated vs realized chart).",
        ),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Estimated accuracy (no labels needed), realized where labels came, data quality."""
    from petalops.monitoring.overview import monitor_quality, since_seconds
    from petalops.monitoring.status import parse_duration
    from petalops.monitoring.store import MonitorStore

    settings = reading(settings_from(config, overrides))
    seconds = parse_duration(since) if since is not None else None
    if html is not None and not chunks:
        chunks = 10
    store = MonitorStore.from_settings(settings)
    try:
        results = monitor_quality(
            settings,
            store,
            rows=window,
            since=since_seconds(seconds),
            version=version,
            chunks=chunks,
        )
    finally:
        store.close()
    if html is not None:
        from petalops.monitoring.quality_report import write_quality_html

        write_quality_html(html, results)
    if as_json:
        print_json({"model": settings.project, "versions": [r.to_json() for r in results]})
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not results:
        console.print("no logged predictions in the window")
    for result in results:
        data = result.to_json()
        est, dq, info = data["estimated"], data["data_quality"], data["window"]
        console.print(
            f"version {result.model_version}: {info['rows']} rows {_time_iso(info['from'])} → "
            f"{_time_iso(info['to'])}  calibration: {est['calibration']}"
        )
        if est.get("reason"):
            console.print(f"[yellow]{est['reason']}[/yellow]")
        table = Table(title=f"estimated performance ({est['level']:.0%} band)")
        for column in ("figure", "estimated [band]", f"realized ({est['labelled']} labelled)"):
            table.add_column(column)
        realized = est["realized"]
        table.add_row("accuracy", _band(est["accuracy"]), _num(realized.get("accuracy")))
        if realized:
            table.add_row(
                "  estimated on the labelled rows",
                _num(realized.get("estimated_accuracy"), 3),
                _num(realized.get("accuracy")),
            )
        table.add_row("macro-F1", _band(est["macro_f1"]), _num(realized.get("macro_f1")))
        for name, band in est["recall"].items():
            table.add_row(f"recall {name}", _band(band), _num(realized.get("recall", {}).get(name)))
        console.print(table)
        verdict = {True: "[green]passed[/green]", False: "[bold red]FAILED[/bold red]"}
        console.print(
            f"data quality: {verdict.get(dq['passed'], '[yellow]not judged[/yellow]')}, "
            f"{dq['refused']} refused at the edge ({dq['refused_share']:.1%})"
        )
        if dq.get("reason"):
            console.print(f"[yellow]{dq['reason']}[/yellow]")
        for failure in dq["failures"]:
            console.print(f"  [red]{failure}[/red]")
        for point in data["timeline"]:
            console.print(
                f"  {point['from']} → {point['to']}  {point['rows']} rows  estimated "
                f"{_band(point['estimated'])}  realized {_num(point['realized'])}"
            )
    if html is not None:
        console.print(f"report written to {html}")


@app.command("skew", epilog=example("petalops monitor skew --version 2"))
def skew(
    version: Annotated[
        str, typer.Option("--version", metavar="VERSION", help="The version to check.")
    ],
    rows: Annotated[
        int | None,
        typer.Option("--rows", help="Its first N served rows (monitor.skew_rows)."),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Training–serving skew: a version's first served rows against its training profile."""
    from petalops.monitoring.skew import training_serving_skew
    from petalops.monitoring.store import MonitorStore

    settings = reading(settings_from(config, overrides))
    store = MonitorStore.from_settings(settings)
    try:
        report = training_serving_skew(settings, store, version, rows=rows)
    finally:
        store.close()
    data = report.to_json()
    if as_json:
        print_json(data)
        return
    from rich.console import Console

    console = Console()
    verdict: dict[bool | None, str] = {
        True: "[bold red]SKEW[/bold red]",
        False: "[green]no skew[/green]",
        None: "[yellow]not judged[/yellow]",
    }
    console.print(
        f"version {version}: first {report.rows} served rows against its training profile: "
        f"{verdict[report.skewed]}"
    )
    if report.drift.reason:
        console.print(f"[yellow]{report.drift.reason}[/yellow]")
    if report.drift.sufficient:
        console.print(f"drifted features: {', '.join(report.drift.drifted) or 'none'}")
    for failure in report.data.failures:
        console.print(f"  [red]{failure}[/red]")


@app.command("status", epilog=example("petalops monitor status --json"))
def status(
    events: Annotated[int, typer.Option("--events", help="How many loop events to show.")] = 10,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Live accuracy and macro-F1 per version and variant, log health, recent loop events."""
    skip_teardown()  # only reads, or writes through closed files (`finish`)
    from petalops.monitoring.reads import MonitorReader
    from petalops.monitoring.status import monitor_status

    settings = reading(settings_from(config, overrides))
    # Read only: no SQLAlchemy for a SQLite file, and nothing created.
    store = MonitorReader.from_settings(settings)
    try:
        data = monitor_status(settings, store, events=events)
    finally:
        store.close()
    if as_json:
        print_json(data)
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    recent = data["recent"]
    log_health = data["prediction_log"]
    console.print(
        f"store: {data['store']}  logged rows: {data['logged_rows']}  "
        f"written: {log_health['written']}  dropped: {log_health['dropped']}"
    )
    console.print(
        f"last {recent['seconds']:.0f} s: {recent['requests']} requests, {recent['errors']} "
        f"errors, p99 {_num(recent['p99_ms'], 1)} ms"
    )
    table = Table(title=f"live quality (newest {data['quality_window']} labelled rows)")
    for column in ("version", "variant", "labelled", "accuracy", "macro-F1"):
        table.add_column(column)
    for row in data["quality"]:
        table.add_row(
            row["model_version"],
            row["variant"],
            str(row["labelled"]),
            _num(row["accuracy"]),
            _num(row["macro_f1"]),
        )
    console.print(table)
    estimated = data["estimated"]
    guess = Table(title=f"estimated quality (newest {estimated['window']} rows, no labels needed)")
    for column in ("version", "rows", "estimated accuracy [band]", "realized", "calibration"):
        guess.add_column(column)
    for row in estimated["versions"]:
        guess.add_row(
            row["model_version"],
            str(row["rows"]),
            _band(row["accuracy"]),
            _num(row["realized_accuracy"]),
            row["calibration"],
        )
    console.print(guess)
    for error in estimated["errors"]:
        console.print(f"[yellow]{error}[/yellow]")
    if data["loop_events"]:
        loop = Table(title="closed loop: recent events")
        for column in ("time (UTC)", "cycle", "step", "version", "message"):
            loop.add_column(column)
        for event in data["loop_events"]:
            loop.add_row(
                _time(event["ts"]),
                event["cycle"] or "–",
                event["kind"],
                event["model_version"] or "–",
                event["message"],
            )
        console.print(loop)


@app.command("watch", epilog=example("petalops monitor watch --retrain --interval 60"))
def watch(
    retrain: Annotated[
        bool | None,
        typer.Option("--retrain/--no-retrain", help="Close the loop (default: monitor.retrain)."),
    ] = None,
    interval: Annotated[
        float | None, typer.Option("--interval", help="Seconds between checks.")
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Check once and exit.")] = False,
    iterations: Annotated[
        int | None, typer.Option("--iterations", help="Stop after N checks.")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", metavar="URL", help="Server URL whose /readyz is checked (no model ready)."
        ),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option("--webhook", metavar="URL", help="POST firing alerts as JSON to this URL."),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Evaluate the alert conditions from the store; with --retrain, retrain and roll out."""
    from petalops.loop.watcher import TickResult, Watcher
    from petalops.monitoring.store import MonitorStore

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per /readyz check is noise
    settings = reading(settings_from(config, overrides))
    store = MonitorStore.from_settings(settings)
    from rich.console import Console

    console = Console(stderr=False)

    def show(result: TickResult) -> None:
        evaluation = result.evaluation
        if as_json:
            out = evaluation.to_json()
            out.pop("drift", None)
            out["cycle"] = vars(result.cycle) if result.cycle is not None else None
            sys.stdout.write(json.dumps(out, default=str) + "\n")  # one JSON line per check
            sys.stdout.flush()
            return
        stamp = _time(evaluation.ts)
        if not evaluation.alerts:
            console.print(f"{stamp} ok: {evaluation.requests} recent requests, no alert")
        for note in evaluation.notes:
            console.print(f"{stamp} [dim]{note}[/dim]")
        if result.cycle is not None:
            cycle = result.cycle
            console.print(
                f"{stamp} retrain cycle {cycle.cycle or '-'}: {cycle.outcome}"
                + (f", version {cycle.version}" if cycle.version else "")
                + (f", run {cycle.run_id}" if cycle.run_id else "")
                + (f", rollout {cycle.rollout_id}" if cycle.rollout_id else "")
                + (f" ({cycle.message})" if cycle.message else "")
            )

    watcher = Watcher(settings, store, retrain=retrain, server_url=server, webhook_url=webhook)
    try:
        watcher.run(interval=interval, iterations=1 if once else iterations, on_tick=show)
    finally:
        store.close()
