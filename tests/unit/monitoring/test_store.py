"""The monitoring store: engine options, concurrent table creation, URL handling."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import sqlalchemy as sa

from petalops.errors import ConfigError
from petalops.monitoring.store import MonitorStore, create_store_engine


def _open(url: str, results: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        MonitorStore(url).close()
        results.put("ok")
    except Exception as exc:
        results.put(repr(exc))


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'sub' / 'monitor.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
    assert (tmp_path / "sub" / "monitor.db").exists()
    engine.dispose()


def test_workers_starting_together_all_get_the_tables(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    for trial in range(3):
        url = f"sqlite:///{tmp_path / f'race{trial}.db'}"
        results = ctx.Queue()
        workers = [ctx.Process(target=_open, args=(url, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [results.get(timeout=5) for _ in workers] == ["ok"] * 4
        engine = sa.create_engine(url)
        assert {"predictions", "loop_events", "log_health"} <= set(
            sa.inspect(engine).get_table_names()
        )
        engine.dispose()


def test_a_bad_url_says_what_a_good_one_looks_like() -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        create_store_engine("not a url")
