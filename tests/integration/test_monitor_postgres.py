"""The monitoring store on PostgreSQL (the at-scale backend), not only SQLite.

Uses $TEST_POSTGRES_URL if set; otherwise starts a throwaway cluster with the local
`initdb`/`pg_ctl` (as the `postgres` user when run as root). Skips, saying why, when
neither a server nor the psycopg2 driver is available.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from tests.utils.monitor_db import create_old_database, insert_old_rows, migrate_together

from petalops.database.engine import create_engine
from petalops.database.migrations import STEPS, applied_versions, migrate
from petalops.database.reader import EngineReader
from petalops.database.schema import predictions
from petalops.errors import InputError
from petalops.monitoring.drift import DriftThresholds, drift_report
from petalops.monitoring.feedback import record_feedback, record_feedback_batch
from petalops.monitoring.logger import PredictionLogger
from petalops.monitoring.quality import live_quality
from petalops.monitoring.reads import MonitorReader
from petalops.monitoring.served import served, versions
from petalops.monitoring.store import _ROWS_A_STATEMENT, MonitorStore
from petalops.pipeline.profile import build_profile
from petalops.rollout.reads import RolloutReader
from petalops.rollout.store import RolloutStore

CLASSES = ["setosa", "versicolor", "virginica"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(command: str) -> list[str]:
    if os.geteuid() != 0:
        return ["sh", "-c", command]
    return ["su", "postgres", "-s", "/bin/sh", "-c", command]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    pytest.importorskip("psycopg2", reason="psycopg2 (PostgreSQL driver) is not installed")
    given = os.environ.get("TEST_POSTGRES_URL")
    if given:
        yield given
        return
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no TEST_POSTGRES_URL and no initdb/pg_ctl on PATH to start PostgreSQL")
    workdir = Path(tempfile.mkdtemp(prefix="petalops-pg-"))
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
    port = _free_port()
    data = workdir / "data"
    started = subprocess.run(
        _as_postgres(
            f"{initdb} -D {data} -A trust -U postgres >/dev/null && {pg_ctl} -D {data} -w "
            f"-o '-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off' "
            f"-l {workdir}/log start >/dev/null"
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if started.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.skip(f"could not start a local PostgreSQL: {started.stderr.strip()[:200]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres(f"{pg_ctl} -D {data} -m immediate stop >/dev/null"),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def test_log_feedback_windows_and_events_on_postgres(postgres_url: str) -> None:
    store = MonitorStore(postgres_url)
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 1.0, (300, 4))
    y = rng.integers(0, 3, 300)
    now = time.time()
    with PredictionLogger(store, flush_rows=100, flush_seconds=0.05) as logger:
        for i in range(300):
            logger.log(
                {
                    "request_id": f"pg{i}",
                    "ts": now - 300 + i,
                    "model_name": "pgmodel",
                    "model_version": "1",
                    "variant": "champion",
                    "status": 500 if i < 3 else 200,
                    "latency_ms": float(i),
                    "features": x[i].tolist(),
                    "prediction": int(y[i]),
                    "class_name": CLASSES[int(y[i])],
                    "probabilities": [0.2, 0.3, 0.5],
                }
            )
        logger.log(
            {
                "request_id": "pg0",
                "ts": now,
                "model_name": "pgmodel",
                "model_version": "2",
                "variant": "shadow",
                "features": x[0].tolist(),
                "prediction": 1,
            }
        )
    assert logger.written == 301

    # served + shadow row
    assert record_feedback(store, "pg0", "virginica", CLASSES).labelled == 2
    assert (
        record_feedback_batch(
            store, [{"request_id": f"pg{i}", "label": int(y[i])} for i in range(1, 100)], CLASSES
        ).labelled
        == 99
    )
    # Not logged (yet): the label waits for its row in pending_labels.
    assert record_feedback(store, "missing", "setosa", CLASSES).pending == 1
    with pytest.raises(InputError):
        record_feedback(store, "pg5", "tulip", CLASSES)

    window = store.window("pgmodel", rows=200)
    assert window.rows == 200  # the 3 failed requests are older than the newest 200
    assert window.versions == {"1": 200}
    np.testing.assert_allclose(window.features, x[100:])
    profile = build_profile(x, y, ["a", "b", "c", "d"], CLASSES, predicted=y)
    assert drift_report(window, profile, DriftThresholds()).dataset_drift is False

    quality = {(q.model_version, q.variant): q for q in live_quality(store, "pgmodel", 500)}
    assert quality[("1", "champion")].labelled == 100
    assert quality[("2", "shadow")].labelled == 1

    requests, errors, latencies = store.recent_requests(now - 1000)
    assert (requests, errors, len(latencies)) == (300, 3, 300)
    features, labels = store.labelled_rows("pgmodel")
    assert features.shape == (100, 4)
    assert len(labels) == 100

    store.add_event(
        "c1",
        "rollout_started",
        "started",
        model_name="pgmodel",
        rollout_id="r-1",
        model_version="3",
        detail={"strategy": "canary"},
    )
    assert [e["rollout_id"] for e in store.open_rollouts("pgmodel")] == ["r-1"]
    store.add_event("c1", "rollout_outcome", "promoted", model_name="pgmodel")
    assert store.open_rollouts("pgmodel") == []
    assert store.events()[-1]["kind"] == "rollout_outcome"
    assert store.last_event_ts("rollout_started", "pgmodel") is not None

    [health] = [h for h in store.health() if h["written"] == 301]
    assert health["dropped"] == 0
    assert store.purge(now - 100) == 200
    store.close()


def _fresh_database(url: str, name: str) -> str:
    """A new, empty database ``name`` on the same server; its URL."""
    admin = create_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.ProgrammingError as exc:  # a given TEST_POSTGRES_URL without CREATEDB
        pytest.skip(f"cannot create a database on {url}: {exc.orig}")
    finally:
        admin.dispose()
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


def test_a_database_the_old_code_created_opens_with_its_rows(postgres_url: str) -> None:
    url = _fresh_database(postgres_url, "petalops_old_layout")
    engine = create_engine(url)
    create_old_database(engine)
    now = insert_old_rows(engine)
    engine.dispose()

    monitor = MonitorStore(url)
    rollout = RolloutStore(url)
    assert applied_versions(monitor.engine) == [step.version for step in STEPS]
    assert monitor.count() == 1
    assert monitor.window("iris").features.tolist() == [[5.1, 3.5, 1.4, 0.2]]
    assert monitor.events()[0]["detail"] == {"why": "old"}
    assert [e["rollout_id"] for e in rollout.history("iris")] == ["r-old"]
    assert not rollout.acquire("rollout:iris", "new-holder", ttl=10.0)
    [sample] = rollout.samples("iris", "champion", "1", since=now - 1)
    assert sample.prediction == 0
    # The SERIAL sequences carry on after the old rows.
    monitor.log_predictions([{"request_id": "new-1", "model_name": "iris"}])
    assert monitor.rows_for_requests(["old-1", "new-1"]) == {"old-1": {0}, "new-1": {0}}
    monitor.close()
    rollout.close()


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "at-version-1"])
def test_processes_starting_together_migrate_once(
    postgres_url: str, tmp_path: Path, existing: bool
) -> None:
    url = _fresh_database(postgres_url, f"petalops_race_{int(existing)}")
    if existing:
        engine = create_engine(url)
        assert migrate(engine, STEPS[:1]) == 1
        engine.dispose()
    marker = tmp_path / "runs"
    assert migrate_together(url, marker, processes=4) == [2] * 4
    engine = create_engine(url)
    assert applied_versions(engine) == [1, 2]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM step_runs").scalar_one() == 1
    engine.dispose()
    assert marker.read_text() == "x"  # the advisory lock made the others wait, not retry


def test_the_versions_table_and_the_read_path_on_postgres(postgres_url: str) -> None:
    url = _fresh_database(postgres_url, "petalops_reads")
    store = MonitorStore(url)
    now = time.time()
    base = {"model_name": "pgreads", "status": 200, "features": [1.0], "prediction": 0}
    store.log_predictions(
        [
            {**base, "request_id": "a", "ts": now - 50, "model_version": "1"},
            {**base, "request_id": "b", "ts": now - 10, "model_version": "1"},
            {
                **base,
                "request_id": "c",
                "ts": now - 40,
                "model_version": "2",
                "variant": "challenger",
            },
            {**base, "request_id": "d", "ts": now - 5, "model_version": "3", "variant": "shadow"},
        ]
    )
    store.log_predictions([{**base, "request_id": "e", "ts": now - 60, "model_version": "2"}])
    assert versions(store, "pgreads") == ["1", "2"]
    assert versions(store, "pgreads", since=now - 20) == ["1"]
    assert served(store, "pgreads", "1").rows == 2
    reader = MonitorReader(url)  # PostgreSQL: the same SQL through SQLAlchemy
    assert isinstance(reader.reader, EngineReader)
    assert versions(reader, "pgreads") == ["1", "2"]
    assert reader.count() == 5
    rollout = RolloutStore(url)
    rollout.record(
        model_name="pgreads",
        rollout_id="r-1",
        strategy="canary",
        phase="running",
        action="start",
        detail={"n": 1},
    )
    assert RolloutReader(url).history("pgreads")[0]["detail"] == {"n": 1}
    assert RolloutReader(url).last_event("pgreads", "r-1", ["start", "advance"]) is not None
    store.purge(now - 30)
    assert versions(store, "pgreads") == ["1"]
    rollout.close()
    reader.close()
    store.close()


def test_spooled_answers_load_in_multi_row_statements_on_postgres(postgres_url: str) -> None:
    # The spool loader's path: answer rows stop before `label` (NULL in the statement),
    # runs of _ROWS_A_STATEMENT go in one multi-row INSERT, the rest one by one; all in
    # order, once.
    many = _ROWS_A_STATEMENT
    first, last = many + many // 2, 2 * many + many // 2 + 5  # the reference row, the late one
    url = _fresh_database(postgres_url, "petalops_spool")
    store = MonitorStore(url)
    common = ("iris", "1", "champion", "/predict", 200, 0.5, "[1.0]", 0, "a", "[1.0,0.0]")
    rows: list[tuple[object, ...]] = [(f"r{i}", 0, float(i), *common) for i in range(first)]
    rows.append(("ref", 0, float(first), *common, 2))  # a challenger's: the champion's answer
    rows += [(f"r{i}", 0, float(i), *common) for i in range(first + 1, last)]
    late = [("late", 0, float(last), *common)]
    assert store.load_spool([("f1", rows), ("f2", late)]) == last + 1
    assert store.load_spool([("f1", rows)]) == 0  # loaded once
    with store.engine.connect() as conn:
        c = predictions.c
        query = sa.select(c.ts, c.reference_prediction, c.label, c.label_ts).order_by(c.id)
        got = [tuple(r) for r in conn.execute(query)]
    store.close()
    assert [ts for ts, *_ in got] == [float(i) for i in range(last + 1)]
    assert got[first] == (float(first), 2, None, None)
    assert {tuple(rest) for i, (_, *rest) in enumerate(got) if i != first} == {(None, None, None)}
