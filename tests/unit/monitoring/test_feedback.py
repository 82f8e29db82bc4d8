"""Feedback labels join logged predictions by request id (404 / 422 on bad input)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from petalops.database.schema import predictions
from petalops.errors import InputError, NotFoundError
from petalops.monitoring.feedback import (
    record_feedback,
    record_feedback_batch,
    record_feedback_body,
)
from petalops.monitoring.logger import PredictionLogger
from petalops.monitoring.store import MonitorStore

CLASSES = ["setosa", "versicolor", "virginica"]


def labels(store: MonitorStore) -> dict[tuple[str, int, str], int | None]:
    with store.engine.connect() as conn:
        query = sa.select(
            predictions.c.request_id, predictions.c.row, predictions.c.variant, predictions.c.label
        )
        return {(r, row, v): lab for r, row, v, lab in conn.execute(query)}


def test_label_by_name_or_index_joins_the_request(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions([make_record("a"), make_record("b"), make_record("c")])
    assert record_feedback(store, "a", "virginica", CLASSES) == 1
    assert record_feedback(store, "b", 1, CLASSES) == 1
    got = labels(store)
    assert got[("a", 0, "champion")] == 2
    assert got[("b", 0, "champion")] == 1
    assert got[("c", 0, "champion")] is None


def test_unknown_request_id_is_not_found(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions([make_record("a")])
    with pytest.raises(NotFoundError) as caught:
        record_feedback(store, "nope", "setosa", CLASSES)
    assert caught.value.http_status == 404
    assert "nope" in caught.value.message


@pytest.mark.parametrize("label", ["rose", 3, -1, 1.5, None, True])
def test_label_outside_the_classes_is_rejected(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]], label: Any
) -> None:
    store.log_predictions([make_record("a")])
    with pytest.raises(InputError) as caught:
        record_feedback(store, "a", label, CLASSES)
    assert caught.value.http_status == 422
    assert labels(store)[("a", 0, "champion")] is None


def test_batch_is_all_or_nothing(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions([make_record("a"), make_record("b")])
    with pytest.raises(NotFoundError):
        record_feedback_batch(
            store,
            [{"request_id": "a", "label": "setosa"}, {"request_id": "zzz", "label": "setosa"}],
            CLASSES,
        )
    with pytest.raises(InputError):
        record_feedback_batch(
            store,
            [{"request_id": "a", "label": "setosa"}, {"request_id": "b", "label": "tulip"}],
            CLASSES,
        )
    assert all(v is None for v in labels(store).values())
    written = record_feedback_batch(
        store,
        [{"request_id": "a", "label": "setosa"}, {"request_id": "b", "label": "virginica"}],
        CLASSES,
    )
    assert written == 2
    assert labels(store)[("b", 0, "champion")] == 2


def test_multi_row_request_needs_a_row_and_shadow_copies_get_the_label(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions(
        [
            make_record("m", row=0),
            make_record("m", row=1),
            make_record("m", row=1, variant="shadow", model_version="2"),
        ]
    )
    with pytest.raises(InputError, match="row"):
        record_feedback(store, "m", "setosa", CLASSES)
    with pytest.raises(NotFoundError):
        record_feedback(store, "m", "setosa", CLASSES, row=7)
    assert record_feedback(store, "m", "versicolor", CLASSES, row=1) == 2
    got = labels(store)
    assert got[("m", 1, "champion")] == 1
    assert got[("m", 1, "shadow")] == 1
    assert got[("m", 0, "champion")] is None


def test_a_prediction_still_queued_in_the_logger_is_found(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    logger = PredictionLogger(store, flush_rows=10_000, flush_seconds=60.0)
    logger.log(make_record("fresh"))
    assert record_feedback(store, "fresh", "setosa", CLASSES, logger=logger) == 1
    logger.close()


def test_malformed_items_are_input_errors(store: MonitorStore) -> None:
    with pytest.raises(InputError):
        record_feedback_batch(store, [{"label": "setosa"}], CLASSES)
    with pytest.raises(InputError):
        record_feedback_batch(store, [], CLASSES)
    with pytest.raises(InputError):
        record_feedback_batch(store, [{"request_id": "a", "label": "setosa", "row": -1}], CLASSES)


def test_the_route_body_shapes(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions([make_record("a"), make_record("b"), make_record("c")])
    one = record_feedback_body(store, {"request_id": "a", "label": "setosa"}, CLASSES)
    assert one == {"labelled": 1}
    batch = {"items": [{"request_id": "b", "label": 1}, {"request_id": "c", "label": 2}]}
    assert record_feedback_body(store, batch, CLASSES) == {"labelled": 2}
    assert record_feedback_body(store, [{"request_id": "c", "label": 0}], CLASSES) == {
        "labelled": 1
    }
    assert labels(store)[("c", 0, "champion")] == 0
    for bad in ("text", 3, {"items": "x"}, {"items": [], "more": 1}):
        with pytest.raises(InputError):
            record_feedback_body(store, bad, CLASSES)
