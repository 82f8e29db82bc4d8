"""Feedback labels join logged predictions by request id: written once, never lost when
they arrive before their prediction, 404 / 409 / 422 on bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from petalops.database.schema import predictions
from petalops.errors import ConflictError, InputError, NotFoundError
from petalops.monitoring.feedback import (
    FeedbackResult,
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
    assert record_feedback(store, "a", "virginica", CLASSES) == FeedbackResult(1, 0)
    assert record_feedback(store, "b", 1, CLASSES) == FeedbackResult(1, 0)
    got = labels(store)
    assert got[("a", 0, "champion")] == 2
    assert got[("b", 0, "champion")] == 1
    assert got[("c", 0, "champion")] is None


def test_a_label_before_its_prediction_waits_and_is_joined_when_it_arrives(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    assert record_feedback(store, "early", "virginica", CLASSES) == FeedbackResult(0, 1)
    assert record_feedback(store, "early", "virginica", CLASSES) == FeedbackResult(0, 1)
    with pytest.raises(ConflictError, match="already labelled 'virginica'"):
        record_feedback(store, "early", "setosa", CLASSES)
    store.log_predictions([make_record("early"), make_record("other")])  # as the loader does
    got = labels(store)
    assert got[("early", 0, "champion")] == 2 and got[("other", 0, "champion")] is None
    assert store.pending_for(["early"]) == {}


def test_a_waiting_label_that_never_matches_is_purged(store: MonitorStore) -> None:
    record_feedback(store, "never", "setosa", CLASSES)
    assert store.purge_pending(older_than=0.0) == 0
    assert store.purge_pending(older_than=float("inf")) == 1
    assert store.pending_for(["never"]) == {}


def test_labels_are_written_once(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions([make_record("a")])
    record_feedback(store, "a", "setosa", CLASSES)
    assert record_feedback(store, "a", "setosa", CLASSES).labelled == 1  # the same: idempotent
    with pytest.raises(ConflictError, match="already labelled 'setosa'") as caught:
        record_feedback(store, "a", "virginica", CLASSES)
    assert caught.value.http_status == 409
    with pytest.raises(InputError, match="admin token"):
        record_feedback_batch(
            store, [{"request_id": "a", "label": "virginica", "overwrite": True}], CLASSES
        )
    assert labels(store)[("a", 0, "champion")] == 0
    record_feedback_batch(
        store,
        [{"request_id": "a", "label": "virginica", "overwrite": True}],
        CLASSES,
        may_overwrite=True,
    )
    assert labels(store)[("a", 0, "champion")] == 2


def test_one_row_twice_in_a_batch_is_refused(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions([make_record("a")])
    with pytest.raises(InputError, match="twice") as caught:
        record_feedback_batch(
            store,
            [{"request_id": "a", "label": "setosa"}, {"request_id": "a", "label": "setosa"}],
            CLASSES,
        )
    assert caught.value.http_status == 422
    assert labels(store)[("a", 0, "champion")] is None


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
    assert written == FeedbackResult(2, 0)
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
    assert record_feedback(store, "m", "versicolor", CLASSES, row=1).labelled == 2
    got = labels(store)
    assert got[("m", 1, "champion")] == 1
    assert got[("m", 1, "shadow")] == 1
    assert got[("m", 0, "champion")] is None


def test_a_prediction_still_queued_in_the_logger_gets_its_label_when_written(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    logger = PredictionLogger(store, flush_rows=10_000, flush_seconds=60.0)
    logger.log(make_record("fresh"))
    assert record_feedback(store, "fresh", "setosa", CLASSES, logger=logger).pending == 1
    logger.close()
    assert labels(store)[("fresh", 0, "champion")] == 0


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
    assert one == {"labelled": 1, "pending": 0}
    batch = {"items": [{"request_id": "b", "label": 1}, {"request_id": "c", "label": 2}]}
    assert record_feedback_body(store, batch, CLASSES) == {"labelled": 2, "pending": 0}
    assert record_feedback_body(store, [{"request_id": "d", "label": 0}], CLASSES) == {
        "labelled": 0,
        "pending": 1,
    }
    assert labels(store)[("c", 0, "champion")] == 2
    for bad in ("text", 3, {"items": "x"}, {"items": [], "more": 1}):
        with pytest.raises(InputError):
            record_feedback_body(store, bad, CLASSES)
