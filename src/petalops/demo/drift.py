"""`petalops demo drift`: shifting, labelled Iris traffic → drift detected → retrained →
challenger → rollout, the monitoring loop end to end as the README shows it.

The traffic is predicted in process and written to the prediction log exactly as a server's
logger writes it, or sent to a running server (``url``) whose stores are then used.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table
from sklearn.datasets import load_iris

from petalops.config import Settings
from petalops.errors import ConfigError
from petalops.loop.watcher import Watcher
from petalops.monitoring.feedback import record_feedback_batch
from petalops.monitoring.logger import PredictionLogger
from petalops.monitoring.status import current_drift
from petalops.monitoring.store import MonitorStore
from petalops.pipeline.run import train
from petalops.registry import load_runtime
from petalops.registry.store import alias_version
from petalops.runtime.model import ModelRuntime


def shifted_traffic(
    rows: int, scale_to: float, features: list[int], seed: int, scale_from: float = 1.0
) -> tuple[Any, Any]:
    """Iris-like rows (resampled, 5 % jitter) whose chosen features grow linearly in scale."""
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


def drift_settings(base: Settings, home: Path | None, url: str | None) -> tuple[Settings, Path]:
    """The demo's settings and where its stores are.

    With ``url``: the server's own stores (these settings). Otherwise fresh embedded stores
    in ``home``, or in ``<home>/demo``, which is wiped first.
    """
    if url:
        return base, base.home_dir
    demo_home = home or base.home_dir / "demo"
    if home is None and demo_home.exists():
        shutil.rmtree(demo_home)  # only the default demo directory is ever wiped
    settings = base.model_copy(
        update={"home": demo_home, "mlflow_uri": "", "experiment": f"{base.project}-demo"}
    )
    settings.monitor = settings.monitor.model_copy(update={"db_url": ""})
    return settings, demo_home


def feature_columns(settings: Settings, wanted: list[str] | None) -> tuple[list[str], list[int]]:
    """The features to shift (default: all) and their column indices."""
    names = settings.data.features or []
    chosen = wanted or list(names)
    unknown = [f for f in chosen if f not in names]
    if unknown:
        raise ConfigError(f"unknown feature(s) {unknown}; choose from {names}")
    return chosen, [names.index(f) for f in chosen]


def run_drift_demo(
    settings: Settings,
    stores: Path,
    *,
    normal: int = 300,
    shifted: int = 600,
    scale: float = 1.3,
    features: list[str] | None = None,
    url: str | None = None,
    console: Console | None = None,
) -> None:
    """Champion, shifting traffic with labels, the drift table, one watch with retraining."""
    console = console or Console()
    wanted, columns = feature_columns(settings, features)
    console.rule("[bold]petalops demo drift")
    console.print(f"stores: {stores}")
    runtime = _champion(settings, console)
    store = MonitorStore.from_settings(settings)
    x_normal, y_normal = shifted_traffic(normal, 1.0, columns, settings.seed)
    x_shift, y_shift = shifted_traffic(shifted, scale, columns, settings.seed + 1)
    x = np.vstack([x_normal, x_shift])
    y = np.concatenate([y_normal, y_shift])
    if url:
        labelled = send_to_server(url, settings.data.features or [], runtime.classes, x, y)
    else:
        labelled = _predict_in_process(settings, store, runtime, x, y)
    predicted = runtime.predict(x)
    console.print(
        f"2. sent {normal} normal + {shifted} rows with {', '.join(wanted)} scaled 1.0 → "
        f"{scale}; {labelled} feedback labels joined"
    )
    console.print(
        f"   champion accuracy: normal {np.mean(predicted[:normal] == y[:normal]):.3f}, "
        f"last {min(300, shifted)} shifted {np.mean(predicted[-300:] == y[-300:]):.3f}"
    )
    _print_drift(settings, store, console)
    version = _watch_once(settings, store, console)
    if version:
        challenger = load_runtime(settings, f"{settings.project}/{version}")
        console.print(
            f"challenger {settings.project}/{version} on the last {min(300, shifted)} "
            f"shifted rows: accuracy {np.mean(challenger.predict(x[-300:]) == y[-300:]):.3f}"
        )
    store.close()


def _champion(settings: Settings, console: Console) -> ModelRuntime:
    """The champion's runtime, trained and registered first when there is none."""
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
    return load_runtime(settings, f"{settings.project}/{champion}")


def _predict_in_process(
    settings: Settings, store: MonitorStore, runtime: ModelRuntime, x: Any, y: Any
) -> int:
    """Predict every row, log it as a server would (0.1 s apart), join its label."""
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
    return record_feedback_batch(store, feedback, runtime.classes).labelled


def _print_drift(settings: Settings, store: MonitorStore, console: Console) -> None:
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


def _watch_once(settings: Settings, store: MonitorStore, console: Console) -> str | None:
    """One `monitor watch --retrain` check and the loop's events; the retrained version."""
    console.print("4. monitor watch --retrain (one check):")
    # The alerts are printed below; keep the watcher's own log lines out of the demo output.
    logging.getLogger("petalops.loop").setLevel(logging.ERROR)
    watcher = Watcher(
        settings,
        store,
        retrain=True,
        on_alert=lambda a: console.print(f"   [red]ALERT[/red] {a.name}: {a.message}"),
    )
    cycle = watcher.tick().cycle
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
    return cycle.version if cycle is not None else None
