"""`petalops rollout start | status | promote | abort | pause | resume | history | run`.

The rollout library (MLflow, SQLAlchemy), Rich and prometheus-client are imported inside the
commands so that `petalops --help` stays fast; the plan and the strategy registry are small.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from datetime import UTC, datetime
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
from petalops.errors import ConfigError
from petalops.rollout.strategies.registry import names as strategy_names
from petalops.rollout.strategies.registry import of as strategy_of

app = group(
    "Progressive delivery: canary, blue-green and shadow, judged and rolled back by itself."
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | None, option: str) -> float | None:
    """``"90"``, ``"60s"``, ``"10m"``, ``"1h"`` -> seconds."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(f"{option} {text!r} is not a duration; examples: 60s, 10m, 1h")
    return float(match[1]) * _UNITS[match[2]]


def _clock(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@app.command(
    "start", epilog=example("petalops rollout start 2 --strategy canary --steps 5,25,50,100")
)
def start(
    version: Annotated[str, typer.Argument(help="Registered version to roll out, e.g. 3.")],
    strategy: Annotated[
        str | None,
        typer.Option(metavar="NAME", help=f"{' | '.join(strategy_names())} (default: settings)."),
    ] = None,
    steps: Annotated[
        str | None,
        typer.Option(metavar="PERCENTS", help="Canary weights in percent, e.g. 5,25,50,100."),
    ] = None,
    interval: Annotated[
        str | None, typer.Option(metavar="DURATION", help="Analysis interval per step, e.g. 60s.")
    ] = None,
    max_error_rate: Annotated[
        float | None, typer.Option(help="Highest challenger 5xx rate, e.g. 0.01.")
    ] = None,
    max_p99_ms: Annotated[
        float | None, typer.Option(help="Highest challenger p99 latency in ms, e.g. 50.")
    ] = None,
    max_disagreement: Annotated[
        float | None, typer.Option(help="Highest share of answers differing from the champion.")
    ] = None,
    min_accuracy: Annotated[
        float | None, typer.Option(help="Lowest accuracy on feedback labels, e.g. 0.9.")
    ] = None,
    min_samples: Annotated[
        int | None, typer.Option(help="Requests per variant before any verdict, e.g. 200.")
    ] = None,
    duration: Annotated[
        str | None, typer.Option(metavar="DURATION", help="Shadow duration, e.g. 10m.")
    ] = None,
    keep_warm: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="Blue-green: keep the old version warm (instant flip back), e.g. 10m.",
        ),
    ] = None,
    warm: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="Time for every worker to load the new version before it answers.",
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start rolling out VERSION; `petalops rollout run` (or `serve`) carries it out."""
    from petalops.rollout.api import start_rollout, thresholds_from

    settings = settings_from(config, overrides)
    thresholds = thresholds_from(
        settings,
        max_error_rate=max_error_rate,
        max_p99_ms=max_p99_ms,
        max_disagreement=max_disagreement,
        min_accuracy=min_accuracy,
        min_samples=min_samples,
    )
    rollout_id = start_rollout(
        settings,
        version,
        strategy,
        steps=steps,
        interval_s=parse_duration(interval, "--interval"),
        duration_s=parse_duration(duration, "--duration"),
        keep_warm_s=parse_duration(keep_warm, "--keep-warm"),
        warm_s=parse_duration(warm, "--warm"),
        thresholds=thresholds,
    )
    if as_json:
        print_json({"rollout_id": rollout_id, "version": version})
        return
    typer.echo(
        f"started {rollout_id}: version {version} as challenger; the controller "
        "(`petalops rollout run` or an embedded one in `petalops serve`) carries it out"
    )


def _status_table(status: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    plan = status["plan"]
    aliases = ", ".join(f"@{k}={v}" for k, v in sorted(status["aliases"].items())) or "-"
    traffic = status["traffic"]
    console.print(f"[bold]{status['model']}[/bold]  {aliases}")
    console.print(
        f"traffic: {traffic['strategy']}, challenger weight {traffic['weight']}%"
        + (f" (rollout {traffic['rollout_id']})" if traffic["rollout_id"] else "")
    )
    ctl = status["controller"]
    console.print(
        f"controller: {ctl['holder']} (lease {ctl['expires_in_s']}s)"
        if ctl
        else "controller: none running (start `petalops rollout run`)"
    )
    if plan is None:
        console.print("no rollout yet")
        return
    from petalops.rollout.plan import RolloutPlan

    shown = RolloutPlan.from_dict(plan)
    strategy = strategy_of(shown)
    steps = ",".join(f"{s:g}" for s in shown.steps) if strategy.steps_are_weights else "-"
    console.print(
        f"rollout {plan['rollout_id']}: {plan['strategy']} of version {plan['version']} "
        f"against {plan['baseline']} — phase [bold]{plan['phase']}[/bold], "
        f"step {plan['step'] + 1}/{strategy.n_steps(shown)} "
        f"(steps {steps})"
        + (f", next decision in {status['next_step_in_s']}s" if status["next_step_in_s"] else "")
    )
    if plan.get("paused_at"):
        console.print(f"paused since {_clock(plan['paused_at'])}: `petalops rollout resume`")
    if plan["reason"]:
        console.print(f"reason: {plan['reason']}")
    window = status["window"]
    if window:
        table = Table(title=f"window: last {window['seconds']}s (this step)")
        for column in ("variant", "requests", "errors", "p50 ms", "p99 ms", "disagree", "acc"):
            table.add_column(column, justify="right")
        for variant in ("champion", "challenger"):
            stats = window.get(variant)
            if not stats:
                continue
            table.add_row(
                variant,
                str(stats["requests"]),
                _pct(stats["error_rate"]),
                _ms(stats["p50_ms"]),
                _ms(stats["p99_ms"]),
                _pct(stats["disagreement_rate"]),
                _pct(stats["accuracy"]),
            )
        console.print(table)
        if not status.get("outcome"):
            console.print(f"verdict so far: {window['decision']} — {'; '.join(window['reasons'])}")
    if status.get("outcome"):
        console.print(f"ended: [bold]{status['outcome']['summary']}[/bold]")


@app.command("status", epilog=example("petalops rollout status --watch 5"))
def status(
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
    watch: Annotated[
        float, typer.Option(help="Refresh every N seconds until the rollout ends (0: once).")
    ] = 0.0,
) -> None:
    """Strategy, step, weights, per-variant numbers, the verdict so far, time to next step."""
    skip_teardown()  # only reads, or writes through closed files (`finish`)
    from petalops.rollout.api import rollout_status

    settings = reading(settings_from(config, overrides))
    while True:
        data = rollout_status(settings)
        if as_json:
            print_json(data)
        else:
            _status_table(data)
        plan = data["plan"]
        from petalops.rollout.plan import ACTIVE_PHASES

        if watch <= 0 or plan is None or plan["phase"] not in ACTIVE_PHASES:
            return
        time.sleep(watch)


@app.command("promote", epilog=example("petalops rollout promote --reason 'looks good'"))
def promote(
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Recorded in the history.")] = "",
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Promote the challenger now: champion := challenger, previous := old champion."""
    from petalops.rollout.api import request

    out = request(settings_from(config, overrides), "promote", reason)
    if as_json:
        print_json(out)
        return
    plan = out["plan"] or {}
    typer.echo(f"{out['result']}: version {plan.get('version')} is the champion")


@app.command("abort", epilog=example("petalops rollout abort --reason 'p99 too high'"))
def abort(
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Recorded in the history.")] = "",
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Roll back now: all traffic to the champion, the challenger alias removed."""
    from petalops.rollout.api import request

    out = request(settings_from(config, overrides), "abort", reason)
    if as_json:
        print_json(out)
        return
    plan = out["plan"] or {}
    typer.echo(
        f"{out['result']}: all traffic on champion {plan.get('baseline')}, "
        f"version {plan.get('version')} out of traffic"
    )


@app.command("pause", epilog=example("petalops rollout pause --reason 'on-call look'"))
def pause(
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Recorded in the history.")] = "",
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hold the rollout where it is: same step and weights, nothing judged, until resumed."""
    from petalops.rollout.api import request

    out = request(settings_from(config, overrides), "pause", reason)
    if as_json:
        print_json(out)
        return
    plan = out["plan"] or {}
    typer.echo(
        f"{out['result']}: rollout {plan.get('rollout_id')} holds at step "
        f"{int(plan.get('step', 0)) + 1}; `petalops rollout resume` continues it"
    )


@app.command("resume", epilog=example("petalops rollout resume"))
def resume(
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Recorded in the history.")] = "",
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continue a paused rollout at the step it held; the step's window starts again."""
    from petalops.rollout.api import request

    out = request(settings_from(config, overrides), "resume", reason)
    if as_json:
        print_json(out)
        return
    plan = out["plan"] or {}
    typer.echo(
        f"{out['result']}: rollout {plan.get('rollout_id')} continues at step "
        f"{int(plan.get('step', 0)) + 1}"
    )


@app.command("history", epilog=example("petalops rollout history --limit 20"))
def history(
    rollout: Annotated[str | None, typer.Option(metavar="ID", help="Only this rollout id.")] = None,
    limit: Annotated[int, typer.Option(help="Newest N decisions.")] = 50,
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every rollout decision with its numbers, oldest first."""
    skip_teardown()  # only reads, or writes through closed files (`finish`)
    from petalops.rollout.api import rollout_history

    rows = rollout_history(reading(settings_from(config, overrides)), rollout, limit)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(_history_line(row))


def _history_line(row: dict[str, Any]) -> str:
    verdict = row["detail"].get("verdict") or {}
    numbers = ""
    challenger = verdict.get("challenger")
    if challenger:
        numbers = (
            f" [n={challenger['requests']} err={_pct(challenger['error_rate'])} "
            f"p99={_ms(challenger['p99_ms'])}ms disagree={_pct(challenger['disagreement_rate'])}"
            f" acc={_pct(challenger['accuracy'])}]"
        )
    return (
        f"{_clock(row['ts'])} {row['rollout_id']} {row['strategy']:<9} "
        f"step {row['step'] + 1} {row['weight']:>5g}% {row['action']:<8} "
        f"{row['verdict'] or '-':<12} v{row['challenger_version']}: {row['reason']}{numbers}"
    )


@app.command("run", epilog=example("petalops rollout run --until-done"))
def run(
    until_done: Annotated[
        bool, typer.Option("--until-done", help="Exit when the current rollout ends.")
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(metavar="PORT", help="Serve Prometheus metrics on 127.0.0.1:PORT.")
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """The controller loop: judge each step, promote or roll back, record every decision."""
    from petalops.rollout.controller import Controller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = settings_from(config, overrides)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr="127.0.0.1")
    controller = Controller(settings)
    stop = threading.Event()
    # SIGTERM (docker stop, kubectl) ends the loop cleanly so the lease is released at once.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    target = None
    if until_done:
        from petalops.rollout.plan import RolloutPlan

        plan = RolloutPlan.parse(controller.plane.read().plan_raw)
        if plan is None or not plan.active:
            typer.echo("no rollout is running")
            return
        target = plan.rollout_id
    try:
        final = controller.run(stop, until_done=target)
    except KeyboardInterrupt:
        stop.set()
        return
    if final is not None and target:
        typer.echo(f"rollout {final.rollout_id}: {final.phase} ({final.reason or 'done'})")
