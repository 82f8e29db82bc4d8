"""The prediction-log reads of quality analysis: probabilities, labels, refusals, first rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from petalops.monitoring.served import served, versions
from petalops.monitoring.store import MonitorStore


def test_rows_of_one_version_with_probabilities_labels_and_refusals(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions(
        [
            make_record("a", ts=100.0, label=0),
            make_record("b", ts=101.0, probabilities=None),
            make_record("c", ts=102.0, status=400, features=None, prediction=None),
            make_record("d", ts=103.0, model_version="2"),
            make_record("e", ts=104.0, variant="shadow"),
            make_record("f", ts=105.0, prediction=1, probabilities=[0.2, 0.7, 0.1]),
            # A body refused before any version was chosen.
            make_record("g", ts=104.5, status=400, model_version="", features=None),
        ]
    )
    window = served(store, "iris", "1")
    assert window.rows == 3
    assert window.ts.tolist() == [100.0, 101.0, 105.0]
    assert window.labels.tolist() == [0, -1, -1]
    assert window.predictions.tolist() == [0, 0, 1]
    assert window.scored.tolist() == [True, False, True]
    assert np.isnan(window.probabilities[1]).all()
    assert window.refused == 2
    assert versions(store, "iris") == ["1", "2"]


def test_newest_rows_by_default_and_the_first_ones_on_request(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions([make_record(f"r{i}", ts=float(i), row=i) for i in range(1, 11)])
    assert served(store, "iris", "1", rows=3).ts.tolist() == [8.0, 9.0, 10.0]
    assert served(store, "iris", "1", rows=3, first=True).ts.tolist() == [1.0, 2.0, 3.0]
    assert served(store, "iris", "1", since=9.0).rows == 2
    assert served(store, "iris", "9").rows == 0


def _distinct(store: MonitorStore, since: float | None = None) -> list[str]:
    """What versions() answered before served_versions: the whole log, scanned."""
    sql = (
        "SELECT DISTINCT model_version FROM predictions WHERE model_name = 'iris' "
        "AND variant IN ('champion', 'challenger') AND model_version != ''"
    )
    if since is not None:
        sql += f" AND ts >= {since}"
    with store.engine.connect() as conn:
        return sorted(str(v) for v in conn.exec_driver_sql(sql).scalars())


def test_versions_come_from_the_table_every_insert_keeps(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    store.log_predictions(
        [
            make_record("a", ts=100.0),
            make_record("b", ts=150.0, model_version="2", variant="challenger"),
            make_record("c", ts=300.0, model_version="3", variant="shadow"),  # not live
            make_record("d", ts=310.0, model_version="", status=400),  # refused at the edge
            make_record("e", ts=120.0, model_version="2"),  # older than its newest
        ]
    )
    store.insert_predictions([])
    store.load_spool([("w1-0001.log", [])])
    with store.engine.connect() as conn:
        kept = conn.exec_driver_sql(
            "SELECT model_name, model_version, last_ts FROM served_versions ORDER BY 2"
        ).all()
    assert [tuple(r) for r in kept] == [("iris", "1", 100.0), ("iris", "2", 150.0)]
    for since in (None, 0.0, 120.0, 149.0, 151.0):
        assert versions(store, "iris", since=since) == _distinct(store, since)
    assert versions(store, "iris", since=120.0) == ["2"]
    # Retention: a version whose rows all went is no longer listed; the others stay.
    store.purge(older_than=140.0)
    assert versions(store, "iris") == _distinct(store) == ["2"]


def test_a_database_read_before_its_migration_is_asked_the_long_way(
    store: MonitorStore, make_record: Callable[..., dict[str, Any]]
) -> None:
    from petalops.monitoring.reads import MonitorReader

    store.log_predictions([make_record("a"), make_record("b", model_version="2")])
    with store.engine.begin() as conn:  # as a database written by the code before step 4
        conn.exec_driver_sql("DROP TABLE served_versions")
    reader = MonitorReader(store.url)
    assert versions(reader, "iris") == ["1", "2"]
    reader.close()
