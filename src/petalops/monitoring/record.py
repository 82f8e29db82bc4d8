"""The prediction record: what the server hands a prediction sink, and the ``predictions``
row it becomes.

One dict per answered (or shadowed) row. :func:`to_values` is the one conversion from a
record to a row, used by the in-process logger, the spool loader and
``MonitorStore.log_predictions``. No SQLAlchemy here: the spool writer, which `petalops
serve`'s supervisor imports, depends on this module.
"""

from __future__ import annotations

from collections.abc import Mapping
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
