"""The prediction spool: workers write files, one loader loads each complete record once."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from petalops.database.schema import predictions, spool_loads
from petalops.monitoring import metrics
from petalops.monitoring.sink import writer_id
from petalops.monitoring.spool import PARTIAL, READY, SpoolLoader, SpoolWriter, _parse_lines
from petalops.monitoring.store import MonitorStore

Record = Callable[..., dict[str, Any]]


def request_ids(store: MonitorStore) -> list[str]:
    with store.engine.connect() as conn:
        query = sa.select(predictions.c.request_id).order_by(predictions.c.id)
        return list(conn.execute(query).scalars())


def spool_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.suffix in (READY, PARTIAL))


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def running_loader(spool: Path, store: MonitorStore) -> Iterator[SpoolLoader]:
    loader = SpoolLoader(spool, store)
    stop = threading.Event()
    thread = threading.Thread(target=loader.run, args=(stop, 0.05))
    thread.start()
    yield loader
    stop.set()
    thread.join(10)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_writer_spools_complete_files_and_never_touches_predictions(
    spool: Path, store: MonitorStore, make_record: Record
) -> None:
    with SpoolWriter(spool, store, flush_seconds=0.01) as writer:
        assert writer.log_many([make_record(f"w{i}", features=[float(i)] * 4) for i in range(5)])
        deadline = time.monotonic() + 5
        while not spool_files(spool) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert store.count() == 0
    [name] = spool_files(spool)
    assert name.endswith(READY)
    lines = (spool / name).read_bytes().splitlines()
    assert [orjson.loads(line)["request_id"] for line in lines] == [f"w{i}" for i in range(5)]
    assert writer.pending == 5  # spooled, not yet loaded: still counts against queue_size


def test_loader_loads_oldest_first_then_deletes(
    spool: Path, store: MonitorStore, make_record: Record
) -> None:
    writer = SpoolWriter(spool, store, flush_seconds=60.0)
    for batch in range(3):
        writer.log_many([make_record(f"b{batch}-{i}") for i in range(4)])
        assert writer.flush(timeout=0.2) is False  # spooled, but no loader yet
    writer.close()
    assert len(spool_files(spool)) == 3
    loader = SpoolLoader(spool, store, load_bytes=1)  # one file per transaction
    assert loader.load_once() == 12
    assert request_ids(store) == [f"b{b}-{i}" for b in range(3) for i in range(4)]
    assert spool_files(spool) == []
    assert loader.load_once() == 0


def test_rows_are_visible_within_two_seconds(
    spool: Path, store: MonitorStore, make_record: Record, running_loader: SpoolLoader
) -> None:
    # The shipped default: the worker spools every monitor.flush_seconds (0.5 s).
    with SpoolWriter(spool, store, flush_seconds=0.5) as writer:
        logged = time.monotonic()
        writer.log(make_record("soon"))
        while store.count() == 0 and time.monotonic() - logged < 5:
            time.sleep(0.01)
        assert time.monotonic() - logged <= 2.0
        assert writer.flush(timeout=5.0)  # and the worker sees its file was committed
        assert writer.written == 1
        assert writer.pending == 0
    assert request_ids(store) == ["soon"]


def test_feedback_flush_waits_for_the_loader(
    spool: Path, store: MonitorStore, make_record: Record, running_loader: SpoolLoader
) -> None:
    with SpoolWriter(spool, store, flush_seconds=60.0) as writer:
        writer.log(make_record("fb"))
        assert writer.flush(timeout=5.0)
        assert store.rows_for_requests(["fb"]) == {"fb": {0}}


def test_torn_last_record_is_skipped_and_counted(
    spool: Path, store: MonitorStore, make_record: Record
) -> None:
    # Workers killed in the middle of a write left .part files: whole records, a line of
    # garbage, then a last record cut short: half of it, or all of it but its newline (the
    # newline is what makes a record complete).
    spool.mkdir()
    whole = b"".join(orjson.dumps(make_record(f"t{i}")) + b"\n" for i in range(2))
    half = orjson.dumps(make_record("t2"))[:40]
    unterminated = orjson.dumps(make_record("t3"))
    for n, torn in enumerate([half, unterminated]):
        name = f"{time.time_ns():020d}-{writer_id().split(':')[0]}_{dead_pid()}-{n:08d}"
        garbage = b"\x00\x00garbage\n" if n == 0 else b""
        (spool / (name + PARTIAL)).write_bytes((whole if n == 0 else b"") + garbage + torn)
    dropped_before = metrics.LOG_DROPPED._value.get()
    loader = SpoolLoader(spool, store)
    assert loader.load_once() == 2
    assert request_ids(store) == ["t0", "t1"]
    assert loader.skipped == 3
    assert loader.recovered == 2
    assert metrics.LOG_DROPPED._value.get() - dropped_before == 3
    assert spool_files(spool) == []
    loader.housekeeping(force=True)
    health = {h["writer"]: h for h in store.health()}
    assert health[writer_id() + ":spool-loader"]["dropped"] == 3


def test_a_live_writers_partial_file_is_left_alone(spool: Path, store: MonitorStore) -> None:
    spool.mkdir()
    name = f"{time.time_ns():020d}-{writer_id().replace(':', '_')}-00000000{PARTIAL}"
    (spool / name).write_bytes(b'{"request_id": "half')  # this process is still writing it
    assert SpoolLoader(spool, store).load_once() == 0
    assert spool_files(spool) == [name]


def test_each_file_is_loaded_once_across_a_loader_crash(
    spool: Path, store: MonitorStore, make_record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SpoolWriter(spool, store, flush_seconds=60.0)
    writer.log_many([make_record(f"c{i}") for i in range(3)])
    writer.flush(timeout=0.2)
    writer.log_many([make_record(f"d{i}") for i in range(2)])
    writer.close()
    first, second = spool_files(spool)

    # Crash 1: the loader dies before its commit; the files stay and nothing is in.
    def killed(*_args: Any) -> int:
        raise sa.exc.OperationalError("INSERT", {}, Exception("killed"))

    with monkeypatch.context() as patch:
        patch.setattr(store, "load_spool", killed)
        with pytest.raises(sa.exc.OperationalError):
            SpoolLoader(spool, store).load_once()
    assert store.count() == 0
    assert spool_files(spool) == [first, second]

    # Crash 2: the loader commits the first file, then dies before deleting it.
    def crash(self: Path, missing_ok: bool = False) -> None:
        raise RuntimeError("killed between the commit and the delete")

    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", crash)
        with pytest.raises(RuntimeError):
            SpoolLoader(spool, store, load_bytes=1).load_once()
    assert sorted(request_ids(store)) == ["c0", "c1", "c2"]
    assert spool_files(spool) == [first, second]

    # The restarted loader deletes the committed file without loading it again.
    restarted = SpoolLoader(spool, store)
    assert restarted.load_once() == 2
    assert sorted(request_ids(store)) == ["c0", "c1", "c2", "d0", "d1"]
    assert spool_files(spool) == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(spool_loads)).scalar() == 2


def test_unwritable_spool_drops_and_counts(
    spool: Path, store: MonitorStore, make_record: Record
) -> None:
    writer = SpoolWriter(spool, store, flush_seconds=0.01)
    shutil.rmtree(spool)  # its writers.lock too
    spool.write_text("not a directory")  # every file the writer opens fails
    dropped_before = metrics.LOG_DROPPED._value.get()
    assert writer.log_many([make_record(f"x{i}") for i in range(7)]) == 7
    writer.close()
    assert writer.dropped == 7
    assert writer.written == 0
    assert metrics.LOG_DROPPED._value.get() - dropped_before == 7
    [health] = store.health()
    assert health["dropped"] == 7


def test_unloaded_spool_counts_against_the_queue_bound(
    spool: Path, store: MonitorStore, make_record: Record
) -> None:
    writer = SpoolWriter(spool, store, queue_size=100, flush_seconds=0.01)
    accepted = writer.log_many([make_record(f"q{i}") for i in range(80)])
    assert writer.flush(timeout=0.3) is False  # spooled; nobody loads
    accepted += writer.log_many([make_record(f"r{i}") for i in range(80)])
    writer.close()
    assert accepted == 100
    assert writer.dropped == 60
    assert SpoolLoader(spool, store).load_once() == 100


def test_malformed_records_are_dropped_alone(
    spool: Path, store: MonitorStore, make_record: Record
) -> None:
    writer = SpoolWriter(spool, store, flush_seconds=0.01)
    assert writer.log(None) is False  # type: ignore[arg-type]
    assert writer.log(make_record("bad", features=object())) is False
    writer.log(make_record("ok1"))
    writer.log(make_record("wrong", status="not a status"))  # caught by the loader
    writer.close()
    loader = SpoolLoader(spool, store)
    assert loader.load_once() == 1
    assert writer.dropped == 2
    assert loader.skipped == 1


def test_a_stopped_loader_loads_on_until_the_last_writer_closes(
    spool: Path, store: MonitorStore, make_record: Record
) -> None:
    writer = SpoolWriter(spool, store, flush_seconds=0.01)
    loader = SpoolLoader(spool, store)
    assert not loader.writers_done()
    stop = threading.Event()
    thread = threading.Thread(target=loader.run, args=(stop, 0.02))
    thread.start()
    stop.set()  # as SIGTERM to the whole group: the loader hears it before the worker
    time.sleep(0.2)
    assert thread.is_alive()  # a writer is still open: it may spool more
    writer.log_many([make_record(f"late-{i}") for i in range(50)])
    writer.close()
    thread.join(10)
    assert not thread.is_alive()
    assert loader.writers_done()
    assert request_ids(store) == [f"late-{i}" for i in range(50)]


def test_a_stopped_loader_gives_up_on_a_writer_that_never_closes(
    spool: Path, store: MonitorStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = SpoolWriter(spool, store, flush_seconds=0.01)
    stop = threading.Event()
    stop.set()
    SpoolLoader(spool, store).run(stop, 0.02, writers_wait=0.3)
    assert "writers still open at exit" in caplog.text
    writer.close()


def test_an_answer_line_loads_as_one_row_per_prediction(spool: Path, store: MonitorStore) -> None:
    # The server's path (log_answer): one line for all the rows of a request, loaded as
    # the rows a record each would have made, champion reference and class names included.
    with SpoolWriter(spool, store, flush_seconds=60.0) as writer:
        accepted = writer.log_answer(
            "ans",
            "/v1/predict",
            "iris",
            "2",
            ["setosa", "versicolor", "virginica"],
            "challenger",
            200,
            1.5,
            [[5.1, 3.5, 1.4, 0.2], [6.0, 2.2, 5.0, 1.5]],
            [0, 2],
            [[0.9, 0.05, 0.05], [0.1, 0.2, 0.7]],
            [0, 1],
        )
        assert accepted == 2
        assert writer.pending == 2
    assert len(spool_files(spool)) == 1  # one file, one line: both rows
    assert SpoolLoader(spool, store).load_once() == 2
    with store.engine.connect() as conn:
        query = sa.select(predictions).order_by(predictions.c.row)
        rows = [dict(r._mapping) for r in conn.execute(query)]
    assert [(r["request_id"], r["row"]) for r in rows] == [("ans", 0), ("ans", 1)]
    assert [r["class_name"] for r in rows] == ["setosa", "virginica"]
    assert [r["prediction"] for r in rows] == [0, 2]
    assert [r["reference_prediction"] for r in rows] == [0, 1]
    assert orjson.loads(rows[1]["features"]) == [6.0, 2.2, 5.0, 1.5]
    assert orjson.loads(rows[0]["probabilities"]) == [0.9, 0.05, 0.05]
    assert {(r["model_name"], r["model_version"], r["variant"], r["route"]) for r in rows} == {
        ("iris", "2", "challenger", "/v1/predict")
    }
    assert {(r["status"], r["latency_ms"], r["label"]) for r in rows} == {(200, 1.5, None)}
    assert spool_files(spool) == []


def test_answer_lines_count_against_the_bound_and_bad_ones_are_skipped(
    spool: Path, store: MonitorStore
) -> None:
    writer = SpoolWriter(spool, store, queue_size=3, flush_seconds=60.0)

    def answer(request_id: str, n: int, labels: list[int] | None = None) -> int:
        return writer.log_answer(
            request_id, "/predict", "iris", "1", ["a", "b"], "champion", 200, 0.1,
            [[1.0]] * n, labels if labels is not None else [0] * n, [[1.0, 0.0]] * n,
        )  # fmt: skip

    assert answer("a", 2) == 2
    assert answer("b", 1) == 1
    assert answer("c", 1) == 0  # over the bound: dropped and counted
    assert writer.dropped == 1
    writer.close()
    (spool / "00000000000000000001-x-00000000.jsonl").write_bytes(
        b'[1,"short"]\n[2,"r",0,"iris","1","champion","/p",200,0.1,[[1.0]],[0],["a"],[[1.0]],null]\n'
    )
    loader = SpoolLoader(spool, store)
    assert loader.load_once() == 3
    assert sorted(request_ids(store)) == ["a", "a", "b"]
    assert loader.skipped == 2  # a line of the wrong length, a layout this loader does not know


def test_the_loader_keeps_the_gauges_only_beside_a_multiprocess_server() -> None:
    from petalops.monitoring import spool as module
    from petalops.serving import app
    from petalops.serving import metrics as serving_metrics

    assert module.SERVE_SETTINGS_ENV == app.SETTINGS_ENV
    assert module.MULTIPROC_ENV == serving_metrics.MULTIPROC_ENV
    several = {module.MULTIPROC_ENV: "/tmp/m"}
    assert module.gauges_in_loader({**several, module.SPOOL_ENV: "/s"})  # a worker's view
    assert module.gauges_in_loader({**several, module.LOADER_ENV: "{}"})  # the loader's
    assert not module.gauges_in_loader({module.SPOOL_ENV: "/s"})  # one worker: it keeps them
    assert not module.gauges_in_loader(several)  # no spool (log off): no loader
    assert module.start_loader_gauges({module.LOADER_ENV: "{}"}) is None


def test_the_collector_is_paused_only_while_a_chunk_loads(
    spool: Path, store: MonitorStore, make_record: Record, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    writer = SpoolWriter(spool, store, flush_seconds=60.0)
    writer.log_many([make_record(f"g{i}") for i in range(3)])
    writer.flush(timeout=0.2)
    writer.close()
    loader = SpoolLoader(spool, store)
    seen: list[bool] = []
    load_spool = store.load_spool

    def failing(files: Any) -> int:
        seen.append(gc.isenabled())
        raise RuntimeError("the store went away")

    monkeypatch.setattr(store, "load_spool", failing)
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        loader.load_once()
    assert seen == [False]  # paused during the chunk
    assert gc.isenabled()  # and on again after a failure
    monkeypatch.setattr(store, "load_spool", load_spool)
    gc.disable()  # a caller that had it off keeps it off
    try:
        assert loader.load_once() == 3
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert request_ids(store) == ["g0", "g1", "g2"]


@pytest.mark.parametrize(
    ("data", "records", "skipped"),
    [
        (b'{"a":1}\n[1,2]\n', [{"a": 1}, [1, 2]], 0),  # every line JSON: one C loop
        (b'{"a":1}\n\n[1]\n', [{"a": 1}, [1]], 0),  # a blank line is no record, no skip
        (b'{"a":1}\n7\n"x"\n[1]\n', [{"a": 1}, [1]], 2),  # JSON, but not a record
        (b'{"a":1}\ngarbage\n[1]\n', [{"a": 1}, [1]], 1),  # not JSON
        (b'{"a":1}\n{"b":', [{"a": 1}], 1),  # a torn last line
        (b'{"a":1}\n[1]', [{"a": 1}], 1),  # a whole last line, but no newline: torn
        (b"[1\n2]\n{},{}\n", [], 3),  # lines that are JSON only when joined
    ],
)
def test_a_spool_file_parses_line_by_line(data: bytes, records: list[Any], skipped: int) -> None:
    assert _parse_lines(data) == (records, skipped)
