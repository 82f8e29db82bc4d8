"""`petalops demo drift` (and, from the rollout block, `petalops demo rollout`)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Annotated, Any

import typer

from petalops.cli.common import ConfigOption, SetOption, settings_from

app = typer.Typer(help="End-to-end demonstrations on the Iris model.", no_args_is_help=True)


def shifted_traffic(
    rows: int, scale_to: float, features: list[int], seed: int, scale_from: float = 1.0
) -> tuple[Any, Any]:
    """Iris-like rows (resampled, 5 % jitter) whose chosen features grow linearly in scale."""
    import numpy as np
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(y), rows)
    out = x[pick] + rng.normal(0.0, 0.05, (rows, x.shape[1])) * x.std(axis=0)
    scale = np.linspace(scale_from, scale_to, rows)
    for j in features:
        out[:, j] *= scale
    return np.round(np.clip(out, 0.1, None), 2), y[pick].astype(np.int64)


def send_to_server(url: str, names: list[str], classes: list[str], x: Any, y: Any) -> int:
    """POST each row to /v1/predict, then its true label to /v1/feedback; labels joined."""
    import time

    import httpx

    base = url.rstrip("/")
    ids: list[str] = []
    with httpx.Client(timeout=10.0) as client:
        for row in x:
            response = client.post(
                f"{base}/v1/predict", json=dict(zip(names, row.tolist(), strict=True))
            )
            response.raise_for_status()
            ids.append(str(response.json()["request_id"]))
        time.sleep(1.0)  # the server's prediction log writes in batches (monitor.flush_seconds)
        labelled = 0
        for request_id, label in zip(ids, y, strict=True):
            answer = client.post(
                f"{base}/v1/feedback", json={"request_id": request_id, "label": classes[int(label)]}
            )
            labelled += answer.status_code < 300
    return labelled


@app.command("drift")
def drift(
    normal: Annotated[int, typer.Option("--normal", help="Rows of normal traffic first.")] = 300,
    shifted: Annotated[int, typer.Option("--shifted", help="Rows of shifting traffic.")] = 600,
    scale: Annotated[
        float, typer.Option("--scale", help="Scale the shifted features reach at the end.")
    ] = 1.3,
    feature: Annotated[
        list[str] | None,
        typer.Option("--feature", help="Feature to shift (repeatable; default: all)."),
    ] = None,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Stores for the demo (default: a fresh <home>/demo)."),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="Send the traffic and feedback to this running server (POST /v1/predict, "
            "/v1/feedback) and use its stores (this project's settings) instead of in-process.",
        ),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Shifting, labelled Iris traffic → drift detected → retrained → challenger → rollout."""
    import time

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from petalops.loop.watcher import Watcher
    from petalops.monitoring.feedback import record_feedback_batch
    from petalops.monitoring.logger import PredictionLogger
    from petalops.monitoring.status import current_drift
    from petalops.monitoring.store import MonitorStore
    from petalops.pipeline.run import train
    from petalops.registry import load_runtime
    from petalops.registry.store import alias_version

    console = Console()
    base = settings_from(config, overrides)
    if url:
        settings = base  # the server's own registry and monitoring store
        demo_home = settings.home_dir
    else:
        demo_home = home or base.home_dir / "demo"
        if home is None and demo_home.exists():
            shutil.rmtree(demo_home)  # only the default demo directory is ever wiped
        settings = base.model_copy(
            update={"home": demo_home, "mlflow_uri": "", "experiment": f"{base.project}-demo"}
        )
        settings.monitor = settings.monitor.model_copy(update={"db_url": ""})
    names = settings.data.features or []
    wanted = feature or list(names)
    unknown = [f for f in wanted if f not in names]
    if unknown:
        raise typer.BadParameter(f"unknown feature(s) {unknown}; choose from {names}")
    columns = [names.index(f) for f in wanted]

    console.rule("[bold]petalops demo drift")
    console.print(f"stores: {demo_home}")
    champion = alias_version(settings, "champion")
    if champion is None:
        result = train(settings, run_name="petalops-demo-champion")
        champion = result.version
        console.print(
            f"1. trained and registered the champion: {settings.project}/{champion} "
            f"(test accuracy {result.metrics['accuracy']:.3f})"
        )
    else:
        console.print(f"1. champion: {settings.project}/{champion}")
    runtime = load_runtime(settings, f"{settings.project}/{champion}")

    store = MonitorStore.from_settings(settings)
    x_normal, y_normal = shifted_traffic(normal, 1.0, columns, settings.seed)
    x_shift, y_shift = shifted_traffic(shifted, scale, columns, settings.seed + 1)
    x = np.vstack([x_normal, x_shift])
    y = np.concatenate([y_normal, y_shift])
    if url:
        labelled = send_to_server(url, names, runtime.classes, x, y)
    else:
        logger = PredictionLogger.from_settings(settings, store)
        started = time.time() - len(y) * 0.1
        feedback = []
        for i, (row, label) in enumerate(zip(x, y, strict=True)):
            t0 = time.perf_counter()
            index, proba = runtime.predict_one(row.tolist())
            request_id = f"demo-{i:05d}"
            logger.log(
                {
                    "request_id": request_id,
                    "row": 0,
                    "ts": started + i * 0.1,
                    "model_name": runtime.name,
                    "model_version": runtime.version,
                    "variant": "champion",
                    "route": "/v1/predict",
                    "status": 200,
                    "latency_ms": (time.perf_counter() - t0) * 1000.0,
                    "features": row.tolist(),
                    "prediction": index,
                    "class_name": runtime.classes[index],
                    "probabilities": proba,
                }
            )
            feedback.append({"request_id": request_id, "label": runtime.classes[int(label)]})
        logger.close()
        labelled = record_feedback_batch(store, feedback, runtime.classes)
    predicted = runtime.predict(x)
    console.print(
        f"2. sent {normal} normal + {shifted} rows with {', '.join(wanted)} scaled 1.0 → "
        f"{scale}; {labelled} feedback labels joined"
    )
    console.print(
        f"   champion accuracy: normal {np.mean(predicted[:normal] == y[:normal]):.3f}, "
        f"last {min(300, shifted)} shifted {np.mean(predicted[-300:] == y[-300:]):.3f}"
    )

    report = current_drift(settings, store).report.to_json()
    table = Table(title="3. drift against the champion's profile")
    for column in ("feature", "drift", "KS", "p-value", "PSI"):
        table.add_column(column)
    for name, f in report["features"].items():
        table.add_row(
            name,
            "[red]yes[/red]" if f["drift"] else "no",
            f"{f['statistic']:.3f}" if f["statistic"] is not None else "–",
            f"{f['p_value']:.2e}" if f["p_value"] is not None else "–",
            f"{f['psi']:.3f}" if f["psi"] is not None else "–",
        )
    console.print(table)
    console.print(
        f"   dataset drift: {report['dataset_drift']}; predicted-class drift: "
        f"{report['prediction_drift']['drift']}"
    )

    console.print("4. monitor watch --retrain (one check):")
    # The alerts are printed below; keep the watcher's own log lines out of the demo output.
    logging.getLogger("petalops.loop").setLevel(logging.ERROR)
    watcher = Watcher(
        settings,
        store,
        retrain=True,
        on_alert=lambda a: console.print(f"   [red]ALERT[/red] {a.name}: {a.message}"),
    )
    tick = watcher.tick()
    cycle = tick.cycle
    if cycle is None:
        console.print("   no retrain trigger fired")
    else:
        console.print(f"   cycle {cycle.cycle}: {cycle.outcome}")
    events = Table(title="5. loop_events")
    for column in ("step", "version", "run", "rollout", "message"):
        events.add_column(column)
    for event in store.events(limit=20):
        events.add_row(
            event["kind"],
            event["model_version"] or "–",
            (event["run_id"] or "–")[:12],
            event["rollout_id"] or "–",
            event["message"],
        )
    console.print(events)
    if cycle is not None and cycle.version:
        challenger = load_runtime(settings, f"{settings.project}/{cycle.version}")
        console.print(
            f"challenger {settings.project}/{cycle.version} on the last {min(300, shifted)} "
            f"shifted rows: accuracy {np.mean(challenger.predict(x[-300:]) == y[-300:]):.3f}"
        )
    store.close()


@app.command("rollout")
def rollout(
    steps: Annotated[str, typer.Option(help="Canary weights in percent.")] = "5,25,50,100",
    interval: Annotated[float, typer.Option(help="Seconds per canary step.")] = 10.0,
    rate: Annotated[float, typer.Option(help="Synthetic requests per second.")] = 100.0,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Stores for the demo (default: a fresh <home>/demo-rollout)."),
    ] = None,
    config: ConfigOption = None,
    overrides: SetOption = None,
) -> None:
    """Champion + challenger → real 2-worker server under load → canary, step by step → promoted."""
    from rich.console import Console

    from petalops.rollout.demo import demo_settings, run_canary_demo

    console = Console()
    settings = demo_settings(settings_from(config, overrides), home)
    console.rule("[bold]petalops demo rollout")
    console.print(f"stores: {settings.home_dir}")
    logging.getLogger("petalops.rollout").setLevel(logging.WARNING)

    def say(line: str) -> None:
        console.print(line, markup=False, highlight=False)

    figures = run_canary_demo(settings, steps=steps, interval_s=interval, rate=rate, say=say)
    if figures["phase"] != "promoted" or figures["failed"]:
        raise typer.Exit(1)
