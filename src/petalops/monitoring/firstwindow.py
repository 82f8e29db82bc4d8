"""The drift reference: the version's training profile, or its first serving window.

Training data is not always what production looks like even when nothing is wrong (a
different season, a different mix of customers); skew (`petalops.monitoring.skew`) reports
that difference once, and drift should then ask whether traffic moved *since*. With
``monitor.drift_reference: first-window`` (or ``monitor drift --reference first-window``) the
reference is the first ``monitor.skew_rows`` rows the version served, profiled the way the
training rows were (`petalops.data.profile.build_profile`), so every drift statistic, the
gauges and the alert work against it unchanged. Until the version has served
``monitor.drift_min_rows`` rows there is no reference: drift is not judged (``None``, with
the reason), never judged against a handful of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from petalops.data.profile import build_profile
from petalops.data.schema import ColumnSchema, Schema
from petalops.errors import InputError
from petalops.monitoring.reads import MonitorReads
from petalops.monitoring.served import served

TRAINING = "training"
FIRST_WINDOW = "first-window"
REFERENCES = (TRAINING, FIRST_WINDOW)


@dataclass(frozen=True)
class Reference:
    """What drift compares a window with: a profile (``None`` while a first window is still
    too short, with the reason) and how reports name it."""

    profile: dict[str, Any] | None
    label: str
    kind: str
    rows: int  # the reference's rows: training rows, or served rows of the first window
    reason: str = ""


def profile_schema(profile: dict[str, Any]) -> Schema:
    """The kinds of a profile's features (numeric where an older profile does not say)."""
    return Schema(
        tuple(
            ColumnSchema(name=name, kind=spec.get("kind", "numeric"))
            for name, spec in profile["features"].items()
        )
    )


def rows_matrix(rows: list[list[Any]], schema: Schema) -> npt.NDArray[Any]:
    """Logged rows as the matrix `build_profile` takes: floats (NaN where missing) for a
    numeric schema, else objects with the numbers as floats and categories as they are."""
    if schema.numeric_only:
        return np.asarray(
            [[np.nan if v is None else float(v) for v in row] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(schema.columns))
    out = np.empty((len(rows), len(schema.columns)), dtype=object)
    for j, column in enumerate(schema.columns):
        values = [row[j] for row in rows]
        if column.kind != "categorical":
            values = [np.nan if v is None else float(v) for v in values]
        out[:, j] = values
    return out


def window_profile(
    rows: list[list[Any]],
    predictions: npt.NDArray[np.int64],
    training: dict[str, Any],
    seed: int = 42,
) -> dict[str, Any]:
    """The profile of served rows in the layout of the training profile they are compared
    with (its features, kinds and classes; no labels, so no class balance)."""
    schema = profile_schema(training)
    return build_profile(
        rows_matrix(rows, schema),
        None,
        list(training["features"]),
        [str(c) for c in training["classes"]],
        predicted=np.asarray(predictions, dtype=np.int64),
        seed=seed,
        schema=schema,
    )


def drift_reference(
    settings: Any,
    store: MonitorReads,
    version: str,
    training: dict[str, Any],
    kind: str | None = None,
) -> Reference:
    """The reference of ``version``'s drift: ``kind`` (default ``monitor.drift_reference``)
    ``training`` is its training profile; ``first-window`` the profile of the first
    ``monitor.skew_rows`` rows it served."""
    kind = kind or settings.monitor.drift_reference
    name = f"{settings.project}/{version}"
    if kind not in REFERENCES:
        raise InputError(f"--reference must be one of {', '.join(REFERENCES)}, got {kind!r}")
    if kind == TRAINING:
        return Reference(training, name, kind, int(training.get("rows", 0)))
    m = settings.monitor
    first = served(store, settings.project, str(version), rows=m.skew_rows, first=True)
    label = f"{name} first window"
    if first.rows < m.drift_min_rows:
        return Reference(
            None,
            label,
            kind,
            first.rows,
            f"no reference yet: version {version} has served {first.rows} rows, the first "
            f"window needs at least {m.drift_min_rows} (monitor.drift_min_rows); wait for "
            "traffic or use --reference training",
        )
    profile = window_profile(first.features, first.predictions, training, seed=settings.seed)
    profile["reference"] = {
        "kind": FIRST_WINDOW,
        "from": float(first.ts[0]),
        "to": float(first.ts[-1]),
        "rows": first.rows,
    }
    return Reference(profile, label, kind, first.rows)


def rows_word(kind: str) -> str:
    """How a report counts the reference's rows: ``training rows`` or ``served rows``."""
    return "training rows" if kind == TRAINING else "served rows"


def unjudged(report: Any, reason: str) -> Any:
    """``report`` (a `DriftReport`) as not judged, for ``reason``: ``None`` verdicts."""
    return replace(
        report, dataset_drift=None, sufficient=False, features={}, prediction=None, reason=reason
    )
