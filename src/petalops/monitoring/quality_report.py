"""A self-contained HTML quality report (`petalops monitor quality --html`): per version, the
estimated accuracy over time with its band next to the realized accuracy where labels came
(one PNG, embedded as base64), the estimated figures and the data-quality checks."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # a bare Figure renders PNG with Agg: no pyplot, no backend

from petalops.monitoring.overview import VersionQuality


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def timeline_png(quality: VersionQuality) -> str | None:
    """Estimated accuracy (line and band) and realized accuracy (points) per chunk, as a
    base64 PNG; ``None`` when no chunk could be estimated."""
    points = [p for p in quality.timeline if p["estimated"]["value"] is not None]
    if not points:
        return None
    when = (np.asarray([p["ts"] for p in points]) * 1000).astype("datetime64[ms]")
    figure = Figure(figsize=(7.0, 3.0), dpi=90)
    axes = figure.add_subplot()
    axes.fill_between(
        when,
        [p["estimated"]["low"] for p in points],
        [p["estimated"]["high"] for p in points],
        alpha=0.25,
        color="#4c72b0",
        label="estimated band",
    )
    axes.plot(when, [p["estimated"]["value"] for p in points], color="#4c72b0", label="estimated")
    labelled = np.asarray([p["realized"] is not None for p in points])
    if labelled.any():
        axes.plot(
            when[labelled],
            [p["realized"] for p in points if p["realized"] is not None],
            "o",
            color="#dd8452",
            label="realized (labelled rows)",
        )
    axes.set_title(f"version {quality.model_version}: accuracy over time")
    axes.set_ylabel("accuracy")
    axes.legend(loc="lower left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def render_quality_html(
    results: list[VersionQuality], title: str = "petalops quality report"
) -> str:
    """The report as one HTML string (no external files, scripts or fonts)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}",
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:4px 8px;text-align:right}th{background:#f4f4f4}.bad{color:#c0392b}",
        f"</style></head><body><h1>{html.escape(title)}</h1>",
    ]
    if not results:
        parts.append("<p>No logged predictions in the window.</p>")
    for quality in results:
        data = quality.to_json()
        est = data["estimated"]
        window = data["window"]
        parts.append(
            f"<h2>version {html.escape(quality.model_version)}</h2><p>{window['rows']} rows "
            f"{_fmt(window['from'])} → {_fmt(window['to'])}; calibration: "
            f"{html.escape(est['calibration'])}; band: central {est['level']:.0%} of simulated "
            "label draws.</p>"
        )
        if est.get("reason"):
            parts.append(f"<p><b>{html.escape(est['reason'])}</b></p>")
        png = timeline_png(quality)
        if png is not None:
            parts.append(
                f"<img alt='estimated vs realized accuracy' src='data:image/png;base64,{png}'>"
            )
        realized = est["realized"]
        parts.append(
            "<table><tr><th>figure</th><th>estimated</th><th>low</th><th>high</th>"
            f"<th>realized ({est['labelled']} labelled)</th></tr>"
        )
        figures = [("accuracy", est["accuracy"], realized.get("accuracy"))]
        figures.append(("macro-F1", est["macro_f1"], realized.get("macro_f1")))
        for name, band in est["recall"].items():
            figures.append((f"recall {name}", band, realized.get("recall", {}).get(name)))
        for name, band, real in figures:
            parts.append(
                f"<tr><td>{html.escape(name)}</td><td>{_fmt(band['value'])}</td>"
                f"<td>{_fmt(band['low'])}</td><td>{_fmt(band['high'])}</td>"
                f"<td>{_fmt(real)}</td></tr>"
            )
        parts.append("</table>")
        dq = data["data_quality"]
        verdict = {True: "passed", False: "FAILED", None: "not judged"}[dq["passed"]]
        parts.append(
            f"<p>data quality: <b>{verdict}</b>; refused at the edge: {dq['refused']} "
            f"({dq['refused_share']:.1%})</p>"
        )
        if dq.get("reason"):
            parts.append(f"<p>{html.escape(dq['reason'])}</p>")
        if dq["features"]:
            parts.append(
                "<table><tr><th>feature</th><th>missing</th><th>out of range</th>"
                "<th>unseen</th><th>wrong type</th><th>top value share</th><th>failed</th></tr>"
            )
            for name, f in dq["features"].items():
                shares = f["shares"]
                failed = ", ".join(f["failed"]) or "–"
                css = " class='bad'" if f["failed"] else ""
                parts.append(
                    f"<tr><td>{html.escape(name)}</td><td>{_fmt(shares.get('missing'))}</td>"
                    f"<td>{_fmt(shares.get('out_of_range'))}</td>"
                    f"<td>{_fmt(shares.get('unseen'))}</td>"
                    f"<td>{_fmt(shares.get('wrong_type'))}</td>"
                    f"<td>{_fmt(f['top_share'])}</td><td{css}>{html.escape(failed)}</td></tr>"
                )
            parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def write_quality_html(path: Path, results: list[VersionQuality]) -> Path:
    """Write the report, whole or not at all (a temporary file renamed into place)."""
    text = render_quality_html(results)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path
