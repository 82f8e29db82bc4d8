"""The control room's state document, built from a real registry and monitoring store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import orjson
import pytest
from tests.utils.rollout import Clock, log_rows

from petalops.config import Settings
from petalops.rollout.api import request, start_rollout
from petalops.rollout.controller import Controller
from petalops.ui.document import with_serving
from petalops.ui.state import Publisher, Sources, StateCache, build_state, encode

pytestmark = pytest.mark.slow  # a trained registry and a monitoring database per test


def test_a_canary_in_one_document(trained_settings: Settings) -> None:
    start_rollout(trained_settings, "2", "canary", steps="10,50,100", warm_s=0)
    Controller(trained_settings).tick()  # the warm-up is over: the first step
    clock = Clock()
    proba = [0.05, 0.9, 0.05]
    log_rows(trained_settings, clock, "champion", "1", 60, latency_ms=3.0, probabilities=proba)
    log_rows(trained_settings, clock, "challenger", "2", 10, latency_ms=5.0, status=500)
    document = build_state(Sources(trained_settings))

    assert document["aliases"] == {"champion": "1", "challenger": "2"}
    versions = {v["version"]: v for v in document["versions"]}
    assert set(versions) == {"1", "2"}
    assert versions["2"]["aliases"] == ["challenger"]
    assert {c["name"] for c in versions["1"]["gate_checks"]} >= {"min_accuracy"}
    assert versions["1"]["created"] > 1.7e9 and versions["1"]["data_rows"] == "150"
    # Built off any worker: nothing is loaded here, the worker that answers says more.
    assert [versions[v]["checksum"] for v in ("1", "2")] == ["registered", "registered"]
    assert document["serving"] is None

    plan = document["rollout"]["plan"]
    assert (plan["strategy"], plan["version"], plan["active"]) == ("canary", "2", True)
    assert plan["weight"] == 10.0 and plan["n_steps"] == 3
    window = document["rollout"]["window"]
    assert window["challenger"]["requests"] == 10 and window["challenger"]["errors"] == 10
    assert any(c["passed"] is False for c in window["checks"])
    assert [e["action"] for e in document["history"]][:1] == ["start"]

    traffic = document["traffic"]
    assert traffic["champion"]["requests"] == 60 and traffic["champion"]["error_rate"] == 0
    assert traffic["challenger"]["error_rate"] == 1.0
    assert traffic["challenger"]["p50_ms"] == pytest.approx(5.0)

    slow = document["slow"]
    assert {a["name"] for a in slow["alerts"]} >= {"PetalopsHighErrorRate"}
    histograms = slow["drift"]["histograms"]
    assert set(histograms) == set(slow["drift"]["features"])
    sepal = histograms["sepal_length"]
    assert len(sepal["edges"]) == len(sepal["reference"]) + 1
    assert sum(sepal["reference"]) == pytest.approx(1.0, abs=1e-3)
    assert sum(sepal["window"]) == pytest.approx(1.0, abs=1e-3)  # the 60 logged rows
    # Accuracy over time: v1's rows estimated from their probabilities, no labels needed.
    timeline = {t["model_version"]: t for t in slow["timeline"]}
    assert timeline["2"]["points"] == []  # every answer of v2 failed: nothing to estimate
    assert timeline["1"]["rows"] == 60
    point = timeline["1"]["points"][-1]
    assert point["rows"] == 60 and point["realized"] is None
    estimated = point["estimated"]
    assert estimated["low"] <= estimated["value"] <= estimated["high"]
    assert document["errors"] == {}
    assert orjson.loads(encode(document))["versions"] == document["versions"]


def test_the_answering_worker_adds_what_it_serves(trained_settings: Settings) -> None:
    document = build_state(Sources(trained_settings))
    v1 = next(v for v in document["versions"] if v["version"] == "1")
    served = {
        "slots": {
            "champion": {"version": "1", "sha256": v1["sha256"]},
            "challenger": {"version": "2", "sha256": "x" * 64},
        }
    }
    mine = orjson.loads(with_serving(encode(document), served))
    assert mine["serving"] == served
    # v1's loaded bundle matches the registry; the one loaded as v2 does not.
    assert [v["checksum"] for v in mine["versions"]] == ["mismatch", "verified"]


def test_the_slow_part_is_reused_until_it_is_due(trained_settings: Settings) -> None:
    sources = Sources(trained_settings)
    first = build_state(sources, now=1000.0)
    again = build_state(sources, first, now=1005.0, slow_seconds=15)
    assert again["slow"] is first["slow"]
    later = build_state(sources, first, now=1016.0, slow_seconds=15)
    assert later["slow"]["computed"] == 1016.0
    # The accuracy timeline, dearer, is read again only once it is timeline_seconds old.
    assert later["slow"]["timeline_at"] == 1000.0
    much_later = build_state(sources, later, now=1100.0, slow_seconds=15, timeline_seconds=90)
    assert much_later["slow"]["timeline_at"] == 1100.0


def test_a_missing_monitoring_store_leaves_the_registry_view(trained_settings: Settings) -> None:
    broken = trained_settings.model_copy(
        update={
            "monitor": trained_settings.monitor.model_copy(
                update={"db_url": "postgresql://nobody:x@127.0.0.1:1/none"}
            )
        }
    )
    document = build_state(Sources(broken))
    assert [v["version"] for v in document["versions"]] == ["2", "1"]
    assert "rollout" in document["errors"] or "traffic" in document["errors"]
    assert "monitoring" in document["errors"]


def test_the_cache_builds_once_while_fresh(trained_settings: Settings) -> None:
    cache = StateCache(trained_settings, fresh_seconds=60)

    async def many() -> list[bytes]:
        return await asyncio.gather(*(cache.get() for _ in range(20)))

    bodies = asyncio.run(many())
    assert len(set(bodies)) == 1 and cache.builds == 1
    # A second cache (another worker) answers the file the first one wrote.
    other = StateCache(trained_settings, fresh_seconds=60)
    assert asyncio.run(other.get()) == bodies[0] and other.builds == 0
    cache.invalidate()
    # Rebuilt at once; nothing changed, so the same document (and ETag) stays published.
    assert asyncio.run(cache.get()) == bodies[0] and cache.builds == 2


def test_a_build_that_finds_nothing_new_keeps_the_published_file(
    trained_settings: Settings,
) -> None:
    publisher = Publisher(trained_settings)
    first = publisher.rebuild()
    inode = publisher.path.stat().st_ino
    assert publisher.rebuild() == first  # the same document: only its mtime moved
    assert publisher.path.stat().st_ino == inode and publisher.age() < 5
    start_rollout(trained_settings, "2", "canary", warm_s=0)
    moved = publisher.rebuild()  # a new plan: a new file
    assert orjson.loads(moved)["rollout"]["plan"]["version"] == "2"
    assert publisher.path.stat().st_ino != inode
    assert publisher.builds == 3


def test_an_action_shows_in_the_next_document(trained_settings: Settings) -> None:
    start_rollout(trained_settings, "2", "canary", warm_s=0)
    cache = StateCache(trained_settings, fresh_seconds=60)
    before = orjson.loads(asyncio.run(cache.get()))
    assert before["rollout"]["plan"]["paused"] is False
    request(trained_settings, "pause", "look closer")
    cache.invalidate()
    after = orjson.loads(asyncio.run(cache.get()))
    assert after["rollout"]["plan"]["paused"] is True


def test_building_it_never_imports_mlflow(trained_settings: Settings) -> None:
    code = (
        "import sys\n"
        "from petalops.config import Settings\n"
        "from petalops.ui.state import Sources, build_state\n"
        f"d = build_state(Sources(Settings(home={str(trained_settings.home_dir)!r})))\n"
        "assert d['versions'] and not d['errors'], d['errors']\n"
        "print('mlflow' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_live_part_is_read_again_when_the_plan_changes(trained_settings: Settings) -> None:
    sources = Sources(trained_settings)
    first = build_state(sources, now=1000.0)
    assert first["rollout"]["plan"] is None
    assert build_state(sources, first, now=1001.0)["rollout_at"] == 1000.0  # reused
    assert sources.catalog() is sources.catalog()  # the registry file did not change
    start_rollout(trained_settings, "2", "canary", warm_s=0)
    moved = build_state(sources, first, now=1002.0)  # a new plan: read at once
    assert moved["rollout_at"] == 1002.0 and moved["rollout"]["plan"]["version"] == "2"
    assert build_state(sources, moved, now=1013.0, rollout_seconds=10)["rollout_at"] == 1013.0
