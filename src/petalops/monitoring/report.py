"""A self-contained HTML drift report: one file, PNG charts embedded as base64 (histograms
of numeric features, bar charts of category and missing-value shares)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure  # a bare Figure renders PNG with Agg: no pyplot, no backend

from petalops.monitoring.drift import DriftReport
from petalops.monitoring.firstwindow import rows_word
from petalops.monitoring.statistics import DriftStatistic, columns


def _histogram_png(
    name: str, reference: npt.NDArray[np.float64], current: npt.NDArray[np.float64]
) -> str:
    low = float(min(reference.min(initial=np.inf), current.min(initial=np.inf)))
    high = float(max(reference.max(initial=-np.inf), current.max(initial=-np.inf)))
    if not np.isfinite(low) or not np.isfinite(high):
        low, high = 0.0, 1.0
    if high <= low:
        high = low + 1.0
    bins = np.linspace(low, high, 21).tolist()
    figure = Figure(figsize=(5.0, 2.8), dpi=90)
    axes = figure.add_subplot()
    axes.hist(reference, bins=bins, density=True, alpha=0.55, label="reference", color="#4c72b0")
    axes.hist(current, bins=bins, density=True, alpha=0.55, label="current", color="#dd8452")
    axes.set_title(name)
    axes.set_ylabel("density")
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _bars_png(name: str, reference: dict[str, float], current: dict[str, float]) -> str:
    """Side-by-side bars of each category's share (``(missing)`` included), reference
    against current."""
    labels = list(dict.fromkeys([*reference, *current]))
    x = np.arange(len(labels))
    figure = Figure(figsize=(5.0, 2.8), dpi=90)
    axes = figure.add_subplot()
    axes.bar(x - 0.2, [reference.get(k, 0.0) for k in labels], 0.4, label="reference")
    axes.bar(x + 0.2, [current.get(k, 0.0) for k in labels], 0.4, label="current")
    axes.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    axes.set_title(name)
    axes.set_ylabel("share of rows")
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _with_missing(shares: dict[str, float], missing: float) -> dict[str, float]:
    # shares are among present values: scale them to all rows and add the missing share
    return {**{k: v * (1.0 - missing) for k, v in shares.items()}, "(missing)": missing}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}"
    return html.escape(str(value))


def _verdict(drift: bool | None) -> str:
    return "–" if drift is None else ("yes" if drift else "no")


def _rule(statistics: tuple[DriftStatistic, ...], thresholds: dict[str, Any]) -> str:
    """The decision rule in words, e.g. "the KS p-value &lt; 0.01 and the KS statistic ≥ 0.1
    or PSI ≥ 0.2"."""
    by_name = thresholds["statistics"]
    tests = [s for s in statistics if s.significance]
    significant = " and ".join(
        f"the {html.escape(s.label)} p-value &lt; {thresholds['p_value']}" for s in tests
    )
    effects = " or ".join(f"{html.escape(s.title)} ≥ {by_name[s.name]}" for s in statistics)
    return f"{significant} and the {effects}" if significant else f"the {effects}"


def render_html(
    report: DriftReport,
    profile: dict[str, Any],
    current: npt.NDArray[np.float64],
    title: str = "petalops drift report",
) -> str:
    """The report as one HTML string (no external files, scripts or fonts)."""
    data = report.to_json()
    verdict = (
        "DRIFT"
        if report.dataset_drift
        else ("no drift" if report.sufficient else "window too small")
    )
    colour = "#c0392b" if report.dataset_drift else ("#27ae60" if report.sufficient else "#7f8c8d")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 10px;text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}",
        ".drift{color:#c0392b;font-weight:bold}.grid{display:flex;flex-wrap:wrap;gap:12px}",
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p style='font-size:1.3em'>Dataset verdict: <b style='color:{colour}'>{verdict}</b></p>",
    ]
    window = data["window"]
    parts.append(
        "<p>"
        f"Window: {window['rows']} rows ({_fmt(window.get('from'))} → {_fmt(window.get('to'))}), "
        f"versions {html.escape(str(window.get('versions')))}; reference "
        f"{html.escape(str(window.get('reference') or 'profile'))} "
        f"({window.get('reference_rows')} {rows_word(window.get('reference_kind', 'training'))})."
        "</p>"
    )
    if report.reason:
        parts.append(f"<p><b>{html.escape(report.reason)}</b></p>")
    thresholds = data["thresholds"]
    parts.append(
        f"<p>A feature drifts when {_rule(report.statistics, thresholds)}; the dataset "
        f"drifts when ≥ {thresholds['share']:.0%} of features drift.</p>"
    )
    table = columns(report.statistics, long=True)
    headings = "".join(f"<th>{html.escape(c.heading)}</th>" for c in table)
    parts.append(
        f"<table><tr><th>feature</th><th>drift</th>{headings}"
        "<th>reference mean</th><th>current mean</th><th>missing (ref → now)</th>"
        "<th>new categories</th></tr>"
    )
    for name, feature in data["features"].items():
        css = " class='drift'" if feature["drift"] else ""
        missing = feature.get("missing") or {}
        cells = "".join(
            f"<td>{_fmt(feature['statistics'][c.statistic][c.key])}</td>" for c in table
        )
        parts.append(
            f"<tr><td>{html.escape(name)}</td><td{css}>{_verdict(feature['drift'])}</td>"
            f"{cells}<td>{_fmt(feature.get('reference_mean'))}</td>"
            f"<td>{_fmt(feature.get('current_mean'))}</td>"
            f"<td>{_fmt(missing.get('reference'))} → {_fmt(missing.get('current'))}</td>"
            f"<td>{_fmt(feature.get('new_category_share'))}</td></tr>"
        )
    parts.append("</table>")
    prediction = data["prediction_drift"]
    parts.append(
        f"<h2>Predicted classes</h2><p>chi-square {_fmt(prediction.get('statistic'))}, "
        f"p-value {_fmt(prediction.get('p_value'))}, drift: "
        f"<b>{'yes' if prediction['drift'] else 'no'}</b></p>"
    )
    if prediction.get("reference"):
        parts.append("<table><tr><th>class</th><th>reference share</th><th>current share</th></tr>")
        for cls, share in prediction["reference"].items():
            parts.append(
                f"<tr><td>{html.escape(cls)}</td><td>{share:.3f}</td>"
                f"<td>{prediction['current'].get(cls, 0.0):.3f}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Reference against current</h2><div class='grid'>")
    features = data.get("features") or {}
    for j, name in enumerate(profile["features"]):
        spec = profile["features"][name]
        feature = features.get(name) or {}
        if spec.get("kind") == "categorical":
            categories = feature.get("categories") or {}
            missing = feature.get("missing") or {}
            png = _bars_png(
                name,
                _with_missing(categories.get("reference", {}), missing.get("reference", 0.0)),
                _with_missing(categories.get("current", {}), missing.get("current", 0.0)),
            )
            parts.append(
                f"<img alt='{html.escape(name)} categories' src='data:image/png;base64,{png}'>"
            )
            continue
        reference = np.asarray(spec.get("sample", []), dtype=np.float64)
        column = np.asarray(current[:, j], dtype=np.float64) if current.size else np.empty(0)
        png = _histogram_png(name, reference, column[~np.isnan(column)])
        parts.append(f"<img alt='{html.escape(name)} histogram' src='data:image/png;base64,{png}'>")
        if spec.get("missing") or (feature.get("missing") or {}).get("current"):
            missing = feature.get("missing") or {}
            png = _bars_png(
                f"{name}: missing values",
                {"missing": float(missing.get("reference", 0.0))},
                {"missing": float(missing.get("current", 0.0))},
            )
            parts.append(
                f"<img alt='{html.escape(name)} missing' src='data:image/png;base64,{png}'>"
            )
    parts.append("</div></body></html>")
    return "\n".join(parts)


def write_html(
    path: Path, report: DriftReport, profile: dict[str, Any], current: npt.NDArray[np.float64]
) -> Path:
    """Write :func:`render_html` to ``path`` (creating its directory); returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, profile, current), encoding="utf-8")
    return path
