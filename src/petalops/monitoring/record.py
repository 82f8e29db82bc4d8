"""The prediction record: what the server hands a prediction sink, and the ``predictions``
row it becomes.

One dict per answered (or shadowed) row. :func:`to_values` is the one conversion from a
record to a row, used by the in-process logger, the spool loader and
``MonitorStore.log_predictions``. No SQLAlchemy here: the spool writer, which `petalops
serve`'s supervisor imports, depends on this module.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import orjson


class PredictionRecord(TypedDict, total=False):
    """The keys a sink understands; a missing ``ts`` is set to the time it was logged."""

    request_id: str
    row: int
    ts: float
    model_name: str
    model_version: str
    variant: str  # champion, challenger or shadow
    route: str
    status: int
    latency_ms: float | None
    features: list[float] | None
    prediction: int | None
    class_name: str | None
    probabilities: list[float] | None
    reference_prediction: int | None  # the champion's answer to a challenger's row
    label: int | None
    label_ts: float | None


# The columns of ``predictions`` but ``id``, in the table's order: what to_values returns.
INSERT_COLUMNS = (
    "request_id",
    "row",
    "ts",
    "model_name",
    "model_version",
    "variant",
    "route",
    "status",
    "latency_ms",
    "features",
    "prediction",
    "class_name",
    "probabilities",
    "reference_prediction",
    "label",
    "label_ts",
)


# The first item of an answer line (below): its layout, should it ever change.
ANSWER_LINE = 1


def answer_line(
    request_id: str,
    ts: float,
    model_name: str,
    model_version: str,
    variant: str,
    route: str,
    status: int,
    latency_ms: float | None,
    rows: Sequence[Any],
    labels: Sequence[int | None],
    class_names: Sequence[str | None],
    probas: Sequence[Any],
    reference: Sequence[int] | None,
) -> tuple[Any, ...]:
    """All the rows of one answer as one JSON array (the spool's compact line): what every
    row shares once, then the per-row lists. :func:`answer_values` reads it back.

    Hand-written instead of one record dict per row: building 14-key dicts cost ~3 µs of
    a ~25 µs request, their one orjson dump a tenth of that (bench/dispatch_cost.py)."""
    return (
        ANSWER_LINE,
        request_id,
        ts,
        model_name,
        model_version,
        variant,
        route,
        status,
        latency_ms,
        rows,
        labels,
        class_names,
        probas,
        reference,
    )


def answer_records(
    request_id: str,
    route: str,
    model_name: str,
    model_version: str,
    classes: Sequence[str],
    variant: str,
    status: int,
    latency_ms: float | None,
    rows: Sequence[Any],
    labels: Sequence[int | None],
    probas: Sequence[Any],
    reference: Sequence[int] | None = None,
) -> list[PredictionRecord]:
    """The prediction records of one answer, one per row (the one place their fields are
    written). A failed answer is one row of ``None`` features, prediction and probabilities.
    """
    ts = time.time()
    return [
        {
            "request_id": request_id,
            "row": i,
            "ts": ts,
            "model_name": model_name,
            "model_version": model_version,
            "variant": variant,
            "route": route,
            "status": status,
            "latency_ms": latency_ms,
            "features": row,
            "prediction": label,
            "class_name": None if label is None else classes[label],
            "probabilities": proba,
            "reference_prediction": None if reference is None else reference[i],
        }
        for i, (row, label, proba) in enumerate(zip(rows, labels, probas, strict=True))
    ]


def answer_values(line: Sequence[Any], now: float) -> list[tuple[Any, ...]]:
    """The ``predictions`` rows of an :func:`answer_line` (as parsed from JSON), in
    ``INSERT_COLUMNS`` order, *short*: an answer has no label yet, so each row stops before
    ``label`` (and, without a reference, before ``reference_prediction``); the store inserts
    the columns left off as NULL (`MonitorStore._insert_values`). Raises (``TypeError``,
    ``ValueError``) on a line that is not one."""
    (
        layout,
        request_id,
        ts,
        model_name,
        model_version,
        variant,
        route,
        status,
        latency_ms,
        rows,
        labels,
        class_names,
        probas,
        reference,
    ) = line
    if layout != ANSWER_LINE:
        raise ValueError(f"unknown answer line layout {layout!r}")
    request_id, ts = str(request_id), float(ts or now)
    model_name, model_version = str(model_name), str(model_version)
    variant, route, status = str(variant), str(route), int(status)
    if len(rows) == 1:  # nearly every line: one tuple, no zip (~0.6 µs of ~2 a row)
        if len(labels) != 1 or len(class_names) != 1 or len(probas) != 1:
            raise ValueError("the lists of an answer line differ in length")
        if reference is not None and len(reference) != 1:
            raise ValueError("the lists of an answer line differ in length")
        first = (
            request_id,
            0,
            ts,
            model_name,
            model_version,
            variant,
            route,
            status,
            latency_ms,
            dumps(rows[0]),
            labels[0],
            class_names[0],
            dumps(probas[0]),
        )
        return [first if reference is None else (*first, reference[0])]
    values = [
        (
            request_id,
            i,
            ts,
            model_name,
            model_version,
            variant,
            route,
            status,
            latency_ms,
            dumps(row),
            label,
            class_name,
            dumps(proba),
        )
        for i, (row, label, class_name, proba) in enumerate(
            zip(rows, labels, class_names, probas, strict=True)
        )
    ]
    if reference is None:
        return values
    return [(*value, ref) for value, ref in zip(values, reference, strict=True)]


def dumps(value: Any) -> str | None:
    """A JSON text column's value: ``None`` and strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def to_row(record: Mapping[str, Any], now: float) -> dict[str, Any]:
    """One prediction record as a row of ``predictions`` (column name to value)."""
    return dict(zip(INSERT_COLUMNS, to_values(record, now), strict=True))


def to_values(record: Mapping[str, Any], now: float) -> tuple[Any, ...]:
    """One prediction record as the values of a ``predictions`` row, in ``INSERT_COLUMNS``
    order (the spool loader converts every row through it, no dict in between).

    Raises (``TypeError``, ``ValueError``) on a record that cannot be a row."""
    get = record.get
    return (
        str(get("request_id", "")),
        int(get("row", 0) or 0),
        float(get("ts") or now),
        str(get("model_name", "")),
        str(get("model_version", "")),
        str(get("variant", "champion")),
        str(get("route", "")),
        int(get("status", 200)),
        get("latency_ms"),
        dumps(get("features")),
        get("prediction"),
        get("class_name"),
        dumps(get("probabilities")),
        get("reference_prediction"),
        get("label"),
        get("label_ts"),
    )
