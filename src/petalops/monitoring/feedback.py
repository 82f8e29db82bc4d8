"""Feedback: ground-truth labels joined to logged predictions by request id.

``POST /v1/feedback`` (the serving block's route) is a thin wrapper around
:func:`record_feedback`. A label is a class name or a class index; it is written to
every logged row of that request and row index, shadow copies included, so that the
challenger's live accuracy can be measured too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from petalops.errors import InputError, NotFoundError
from petalops.monitoring.store import MonitorStore

EXAMPLE = '{"request_id": "3f2a...", "label": "setosa"}'


@dataclass(frozen=True)
class Feedback:
    request_id: str
    label: str | int
    row: int | None = None


def label_index(label: Any, classes: Sequence[str]) -> int:
    """A class name or index as an index into ``classes``; InputError (422) otherwise."""
    if isinstance(label, bool):
        label = str(label)
    if isinstance(label, int):
        if 0 <= label < len(classes):
            return label
    elif isinstance(label, str) and label in classes:
        return list(classes).index(label)
    raise InputError(
        f"label {label!r} is not one of the classes {list(classes)} "
        f"(or an index 0..{len(classes) - 1}); example: {EXAMPLE}"
    )


def _coerce(item: Feedback | Mapping[str, Any]) -> Feedback:
    if isinstance(item, Feedback):
        return item
    if not isinstance(item, Mapping) or "request_id" not in item or "label" not in item:
        raise InputError(f"each feedback item needs request_id and label; example: {EXAMPLE}")
    row = item.get("row")
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 0):
        raise InputError(f"row must be a non-negative integer, got {row!r}")
    return Feedback(request_id=str(item["request_id"]), label=item["label"], row=row)


def record_feedback_batch(
    store: MonitorStore,
    items: Sequence[Feedback | Mapping[str, Any]],
    classes: Sequence[str],
    *,
    logger: Any = None,
) -> int:
    """Join labels to logged predictions, all or nothing; returns the rows labelled.

    Raises InputError (422) for a label outside ``classes`` and NotFoundError (404) for a
    request id (or row) that was never logged. Pass the running ``PredictionLogger`` as
    ``logger`` so that a prediction still in its queue is written before the lookup.
    """
    parsed = [_coerce(item) for item in items]
    if not parsed:
        raise InputError(f"no feedback given; example: {EXAMPLE}")
    indexes = [label_index(item.label, classes) for item in parsed]
    request_ids = sorted({item.request_id for item in parsed})
    found = store.rows_for_requests(request_ids)
    if len(found) < len(request_ids) and logger is not None:
        logger.flush(timeout=2.0)
        found = store.rows_for_requests(request_ids)
    writes: list[tuple[str, int, int]] = []
    for item, index in zip(parsed, indexes, strict=True):
        rows = found.get(item.request_id)
        if not rows:
            raise NotFoundError(f"no logged prediction has request id {item.request_id!r}")
        if item.row is None:
            if len(rows) > 1:
                raise InputError(
                    f"request {item.request_id!r} predicted {len(rows)} rows; "
                    'say which one with "row": 0..'
                    f"{max(rows)}"
                )
            writes.append((item.request_id, next(iter(rows)), index))
        elif item.row not in rows:
            raise NotFoundError(f"request {item.request_id!r} has no row {item.row}")
        else:
            writes.append((item.request_id, item.row, index))
    return store.set_labels(writes, time.time())


def record_feedback(
    store: MonitorStore,
    request_id: str,
    label: str | int,
    classes: Sequence[str],
    *,
    row: int | None = None,
    logger: Any = None,
) -> int:
    """Join one label to the logged prediction(s) of ``request_id``; returns rows labelled."""
    return record_feedback_batch(store, [Feedback(request_id, label, row)], classes, logger=logger)


def feedback_items(body: Any) -> list[Feedback | Mapping[str, Any]]:
    """The items of a ``POST /v1/feedback`` body: one object, ``{"items": [...]}`` or a list."""
    if isinstance(body, Mapping) and "items" in body:
        items = body["items"]
        if len(body) != 1 or not isinstance(items, list):
            raise InputError(f'a batch is {{"items": [{EXAMPLE}, ...]}} and nothing else')
        return list(items)
    if isinstance(body, list):
        return list(body)
    if isinstance(body, Mapping):
        return [body]
    raise InputError(f"the body must be a JSON object; example: {EXAMPLE}")


def record_feedback_body(
    store: MonitorStore, body: Any, classes: Sequence[str], *, logger: Any = None
) -> dict[str, int]:
    """What ``POST /v1/feedback`` does with a parsed JSON body: ``{"labelled": rows}``."""
    return {"labelled": record_feedback_batch(store, feedback_items(body), classes, logger=logger)}
