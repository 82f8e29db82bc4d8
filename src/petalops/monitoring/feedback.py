"""Feedback: ground-truth labels joined to logged predictions by request id.

``POST /v1/feedback`` (the serving block's route) is a thin wrapper around
:func:`record_feedback`. A label is a class name or a class index; it is written to
every logged row of that request and row index, shadow copies included, so that the
challenger's live accuracy can be measured too.

Labels drive live accuracy, canary verdicts and retraining, so they are guarded against
poisoning: a label is written once (a different second label is a 409 naming the first;
``overwrite`` is for the admin), a batch naming one row twice is refused (422), and a
label for a prediction not logged yet (still in a worker's spool) waits in
``pending_labels`` and is joined when its row arrives, never a spurious 404.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from petalops.errors import ConflictError, InputError, NotFoundError
from petalops.monitoring.store import MonitorStore

EXAMPLE = '{"request_id": "3f2a...", "label": "setosa"}'


@dataclass(frozen=True)
class Feedback:
    request_id: str
    label: str | int
    row: int | None = None
    overwrite: bool = False


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
    overwrite = item.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise InputError(f"overwrite must be true or false, got {overwrite!r}")
    return Feedback(str(item["request_id"]), item["label"], row, overwrite)


@dataclass(frozen=True)
class FeedbackResult:
    """Rows labelled now, and labels waiting for a prediction not logged yet."""

    labelled: int
    pending: int = 0


def record_feedback_batch(
    store: MonitorStore,
    items: Sequence[Feedback | Mapping[str, Any]],
    classes: Sequence[str],
    *,
    logger: Any = None,
    may_overwrite: bool = False,
) -> FeedbackResult:
    """Join labels to logged predictions, all or nothing.

    Raises InputError (422) for a label outside ``classes``, a row named twice, or
    ``overwrite`` without ``may_overwrite``; NotFoundError (404) for a row a logged request
    does not have; ConflictError (409) for a label that differs
    from the one already recorded. Sending the same label again changes nothing. A request
    id not logged yet keeps its label waiting (``pending``). ``logger`` is accepted for
    callers of the earlier signature and no longer waited on.
    """
    del logger  # waiting for the log to flush is what made feedback slow and racy
    parsed = [_coerce(item) for item in items]
    if not parsed:
        raise InputError(f"no feedback given; example: {EXAMPLE}")
    indexes = [label_index(item.label, classes) for item in parsed]
    seen: set[tuple[str, int | None]] = set()
    for item in parsed:
        key = (item.request_id, item.row)
        if key in seen:
            where = "" if item.row is None else f" row {item.row}"
            raise InputError(f"request {item.request_id!r}{where} is labelled twice in one batch")
        seen.add(key)
        if item.overwrite and not may_overwrite:
            raise InputError(
                "overwrite needs the admin token (Authorization: Bearer <PETALOPS_ADMIN_TOKEN>)"
            )
    request_ids = sorted({item.request_id for item in parsed})
    found = store.labels_for_requests(request_ids)
    waiting = store.pending_for([rid for rid in request_ids if rid not in found])
    writes: list[tuple[str, int, int]] = []
    pending: list[tuple[str, int, int]] = []
    for item, index in zip(parsed, indexes, strict=True):
        rows = found.get(item.request_id)
        if not rows:
            key = (item.request_id, -1 if item.row is None else item.row)
            _check_once(item, index, waiting.get(key), classes)
            pending.append((*key, index))
            continue
        if item.row is None:
            if len(rows) > 1:
                raise InputError(
                    f"request {item.request_id!r} predicted {len(rows)} rows; "
                    'say which one with "row": 0..'
                    f"{max(rows)}"
                )
            row = next(iter(rows))
        elif item.row not in rows:
            raise NotFoundError(
                f"request {item.request_id!r} has no row {item.row} (rows 0..{max(rows)})"
            )
        else:
            row = item.row
        _check_once(item, index, rows[row], classes)
        writes.append((item.request_id, row, index))
    now = time.time()
    labelled = store.set_labels(writes, now) if writes else 0
    return FeedbackResult(labelled, store.add_pending(pending, now))


def _check_once(item: Feedback, index: int, existing: int | None, classes: Sequence[str]) -> None:
    if existing is None or existing == index or item.overwrite:
        return
    where = "" if item.row is None else f" row {item.row}"
    raise ConflictError(
        f"request {item.request_id!r}{where} is already labelled "
        f"{classes[existing] if existing < len(classes) else existing!r}; labels are written "
        'once ("overwrite": true with the admin token replaces one)'
    )


def record_feedback(
    store: MonitorStore,
    request_id: str,
    label: str | int,
    classes: Sequence[str],
    *,
    row: int | None = None,
    logger: Any = None,
) -> FeedbackResult:
    """Join one label to the logged prediction(s) of ``request_id``."""
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
    store: MonitorStore,
    body: Any,
    classes: Sequence[str],
    *,
    logger: Any = None,
    may_overwrite: bool = False,
) -> dict[str, int]:
    """What ``POST /v1/feedback`` does with a parsed JSON body:
    ``{"labelled": rows, "pending": labels waiting for their prediction}``."""
    result = record_feedback_batch(
        store, feedback_items(body), classes, logger=logger, may_overwrite=may_overwrite
    )
    return {"labelled": result.labelled, "pending": result.pending}
