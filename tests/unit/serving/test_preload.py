"""serve.worker_start=fork: what a worker forked from the `serve` parent inherits (the
runtimes the parent opened, once) and what it must not (in-memory metric values)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from petalops.config import Settings
from petalops.registry import resolve
from petalops.runtime.model import open_bundle
from petalops.serving import preload
from petalops.serving.metrics import MULTIPROC_ENV, use_worker_files
from petalops.serving.source import RegistrySource

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])
FORK = multiprocessing.get_context("fork")


@pytest.fixture(autouse=True)
def _nothing_preloaded() -> Iterator[None]:
    preload.clear()
    yield
    preload.clear()


def in_forked_child(work: Callable[[], Any]) -> Any:
    """``work()`` run in a child forked from this process; its result (or its error)."""
    receive, send = FORK.Pipe(duplex=False)

    def run() -> None:
        try:
            send.send(("ok", work()))
        except BaseException as exc:  # reported to the test, not lost with the child
            send.send(("error", repr(exc)))

    child = FORK.Process(target=run)
    child.start()
    status, value = receive.recv()
    child.join(30)
    assert status == "ok", value
    return value


def test_a_forked_worker_serves_the_runtime_its_parent_opened(trained_settings: Settings) -> None:
    info = resolve(trained_settings, trained_settings.model_ref)
    assert info.version in preload.preload(trained_settings)  # the champion (and previous)
    parent = os.getpid()
    source = RegistrySource(trained_settings)

    def worker() -> tuple[int, int, list[int]]:
        runtime = source.load(info)
        again = source.load(info)  # taken once: a later load opens the bundle itself
        return runtime.opened_in, again.opened_in, runtime.predict(ROWS).tolist()

    opened_in, again_in, answer = in_forked_child(worker)
    assert opened_in == parent  # not opened again in the worker
    assert again_in != parent
    assert answer == source.load(info).predict(ROWS).tolist()
    # The parent itself (one worker runs in-process) never takes it: it loads as before.
    assert source.load(info).opened_in == parent
    assert preload.take(info) is None


def test_a_version_other_than_the_preloaded_one_is_loaded_by_the_worker(
    trained_settings: Settings,
) -> None:
    preload.preload(trained_settings)
    info = resolve(trained_settings, trained_settings.model_ref)
    other = type(info)(
        name=info.name, version="99", run_id=info.run_id, sha256=info.sha256, tags=info.tags
    )
    assert in_forked_child(lambda: preload.take(other) is None)


def test_nothing_to_preload_is_not_an_error(empty_settings: Settings) -> None:
    assert preload.preload(empty_settings) == []


def test_an_onnx_session_opened_before_the_fork_answers_in_the_child(
    trained_settings: Settings,
) -> None:
    info = resolve(trained_settings, trained_settings.model_ref)
    from petalops.registry.resolve import fetch_bundle

    directory = fetch_bundle(trained_settings, info)
    runtime = open_bundle(directory, info.name, info.version, info.sha256, prefer="onnx")
    assert type(runtime).__name__ == "OnnxRuntime"
    expected = runtime.predict_proba(ROWS).tolist()
    assert in_forked_child(lambda: runtime.predict_proba(ROWS).tolist()) == expected


def test_a_forked_worker_counts_in_its_own_multiprocess_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent imported prometheus-client without PROMETHEUS_MULTIPROC_DIR (as `serve`
    does, before its preflight); the worker's counts must still reach the files /metrics
    merges."""
    from prometheus_client import multiprocess

    from petalops.serving import metrics

    def worker() -> bool:
        os.environ[MULTIPROC_ENV] = str(tmp_path)
        switched = use_worker_files()
        metrics.MODEL_LOADS.labels("ok").inc(3)
        metrics.MODEL_READY.set(1)
        return switched

    assert in_forked_child(worker) is True
    assert any(tmp_path.iterdir())
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=str(tmp_path))
    assert merged.get_sample_value("petalops_model_loads_total", {"result": "ok"}) == 3
    assert merged.get_sample_value("petalops_model_ready") == 1
    # Without the directory (one worker, no multiprocess mode) nothing changes.
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    assert use_worker_files() is False
