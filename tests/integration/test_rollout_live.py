"""Rollouts against a real two-worker `petalops serve` under continuous load on 127.0.0.1.

One server and one registry for the module: v1 (champion), v2 (other parameters), a model
trained on shuffled labels (wrong answers), a wide MLP (slow), and a version whose bundle
checksum does not match (cannot be loaded). Each test puts the registry back to rest first.
Every test asserts zero failed client requests.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from petalops.config import ServeSettings, Settings
from petalops.demo.server import ServerProcess
from petalops.demo.traffic import Traffic, TrafficReport
from petalops.monitoring.store import MonitorStore
from petalops.rollout.analysis import Thresholds
from petalops.rollout.api import request, rollout_history, start_rollout
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.controller import Controller
from petalops.rollout.plan import RolloutPlan
from petalops.rollout.routing import TrafficPolicy

# -- harness ------------------------------------------------------------------------------


FEATURE_NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASS_NAMES = ["setosa", "versicolor", "virginica"]


def register_model(settings: Settings, estimator: Any, *, shuffle_labels: bool = False) -> str:
    """Fit ``estimator`` on Iris and register its bundle as a new version, gate bypassed.

    The real bundle compiler and registry are used (the version loads and serves like any
    other); only the quality gate, which exists to refuse such models, is skipped.
    """
    import tempfile

    from sklearn.datasets import load_iris
    from sklearn.pipeline import Pipeline

    from petalops.pipeline.compile import write_bundle
    from petalops.pipeline.profile import build_profile
    from petalops.registry import store

    x, y = load_iris(return_X_y=True)
    if shuffle_labels:
        y = np.random.default_rng(7).permutation(y)
    pipeline = Pipeline([("model", estimator)]).fit(x, y)
    profile = build_profile(x, y, FEATURE_NAMES, CLASS_NAMES, predicted=pipeline.predict(x))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "petalops"
        digest = write_bundle(
            bundle, pipeline, settings.project, FEATURE_NAMES, CLASS_NAMES, profile, x
        )
        with store.tracked_run(settings, run_name=type(estimator).__name__) as run_id:
            store.log_artifacts(bundle, "petalops")
    return _create_version(settings, run_id, digest)


def _create_version(settings: Settings, run_id: str, sha256: str) -> str:
    """A registry version of ``run_id``'s bundle (servers fetch the bundle by run id)."""
    from petalops.registry import SHA_TAG, store

    client = store.client(settings)
    source = client.get_run(run_id).info.artifact_uri
    version = client.create_model_version(
        settings.project, source=source, run_id=run_id, tags={SHA_TAG: sha256}
    )
    return str(version.version)


def train_shuffled(settings: Settings) -> str:
    """A LogisticRegression trained on shuffled labels: it answers wrongly, fast."""
    from sklearn.linear_model import LogisticRegression

    return register_model(settings, LogisticRegression(max_iter=200), shuffle_labels=True)


def train_slow(settings: Settings) -> str:
    """A wide MLP: a real (and inaccurate) model, slow through the fault hook (`SLOW_FAULT`).

    Its own compute is ~0.7 ms a row (p99 0.9 ms on an idle core), far under the 6 ms p99
    limit its test sets: its p99 went over that limit only from the 2-core box's serving
    noise (6.7 ms on main), and a server with a tighter tail (workers forked, not spawned)
    left it under, so the rollback fell to the next failing check, its estimated accuracy
    drop. The delay makes every one of its answers slow by a margin whatever the load."""
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=(1024, 1024), solver="lbfgs", max_iter=2, random_state=0)
    return register_model(settings, mlp)


def register_tampered(settings: Settings, like: str) -> str:
    """A version whose recorded checksum does not match its bundle: no server will load it."""
    from petalops.registry import store

    return _create_version(settings, store.get_version(settings, like).run_id, "0" * 64)


class LiveServer(ServerProcess):
    """`petalops serve --workers 2` on 127.0.0.1 that can be asked what it serves."""

    def versions_seen(self, n: int = 40) -> set[tuple[str, str]]:
        seen = set()
        for i in range(n):
            # A new connection each time: one kept-alive connection stays on one worker, and
            # the other may not have reconciled yet.
            reply = httpx.post(
                self.url + "/v1/predict",
                json={
                    "sepal_length": 5.1,
                    "sepal_width": 3.5,
                    "petal_length": 1.4,
                    "petal_width": 0.2,
                },
                headers={"x-petalops-key": f"probe-{i}"},
                timeout=5,
            )
            data = reply.json()
            seen.add((str(data["model_version"]), str(data["variant"])))
        return seen


def reset(settings: Settings, server: LiveServer, champion: str, timeout: float = 30.0) -> None:
    """Back to rest: ``champion`` answers everything, no challenger, no previous."""
    plane = ControlPlane(settings)
    left = RolloutPlan.parse(plane.read().plan_raw)
    if left is not None and left.active:  # a failed test left its rollout running
        request(settings, "abort", "test reset")
    plane.set_traffic(TrafficPolicy.none())
    plane.set_alias("champion", champion)
    plane.delete_alias("challenger")
    plane.delete_alias("previous")
    wait_for(lambda: server.versions_seen() == {(champion, "champion")}, timeout, "reset")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# -- tests --------------------------------------------------------------------------------

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# The serving block's test-only fault hook (see docs/rollouts.md, "Testing rollbacks"):
# with `serve.test_faults` on, a version tagged `petalops.test_fault=error` fails every
# prediction. Until the server has it, the erroring-challenger test is skipped.
FAULT_TAG = "petalops.test_fault"
HAS_FAULT_HOOK = "test_faults" in ServeSettings.model_fields

# Every answer of the slow challenger takes at least this long (after its warm-up).
SLOW_FAULT = "delay_ms:15"

RATE = 80.0
# Generous latency limit for healthy versions: the box is shared, the analysis is real.
HEALTHY = Thresholds(min_samples=40, max_p99_ms=500.0, max_inconclusive=3)


@dataclass
class Live:
    settings: Settings
    server: LiveServer
    shuffled: str
    slow: str
    tampered: str
    erroring: str


@pytest.fixture(scope="module")
def live(
    _session_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("rollout-live")
    home = root / ".petalops"
    shutil.copytree(_session_stores["trained"], home, ignore=shutil.ignore_patterns("cache"))
    settings = Settings(  # type: ignore[call-arg]
        home=home,
        reconcile_seconds=0.5,
        rollout={"tick_seconds": 0.25, "lease_seconds": 5.0},
    )
    from petalops.registry import store

    shuffled = train_shuffled(settings)
    slow = train_slow(settings)
    tampered = register_tampered(settings, "2")
    info = store.get_version(settings, "2")
    erroring = _create_version(settings, info.run_id, info.sha256)
    store.set_version_tag(settings, erroring, FAULT_TAG, "error")
    store.set_version_tag(settings, slow, FAULT_TAG, SLOW_FAULT)
    env = {"PETALOPS_SERVE__TEST_FAULTS": "1"} if HAS_FAULT_HOOK else {}
    server = LiveServer(settings, workers=2, reconcile=0.5, env=env).start()
    try:
        yield Live(settings, server, shuffled, slow, tampered, erroring)
    finally:
        server.stop()


def drive(
    live: Live, rollout_id: str, seconds: float = 60.0, before: float = 1.0
) -> tuple[RolloutPlan, TrafficReport]:
    """Run the controller until the rollout ends, under load that started ``before`` it."""
    traffic = Traffic(live.server.url, rate=RATE, threads=2).start(seconds + before + 5)
    time.sleep(before)
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)  # bound the test whatever happens
    timer.start()
    try:
        plan = Controller(live.settings).run(stop, until_done=rollout_id)
    finally:
        timer.cancel()
    time.sleep(2 * live.settings.reconcile_seconds + 1)  # traffic after the last decision
    report = traffic.stop()
    assert plan is not None, "the rollout did not finish in time"
    return plan, report


def decision_ts(settings: Settings, rollout_id: str, action: str) -> float:
    return next(e["ts"] for e in rollout_history(settings, rollout_id) if e["action"] == action)


def assert_zero_failures(report: TrafficReport, label: str = "") -> None:
    if label:
        print(f"{label}: {report.sent} requests, {report.failed} failed, {dict(report.served)}")
    assert report.sent > 100
    assert report.failed == 0, report.failures[:5]
    assert report.ok == report.sent


def test_canary_5_to_100_promotes_with_zero_failed_requests(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    rid = start_rollout(
        settings, "2", "canary", steps="25,50,100", interval_s=4, warm_s=1.5, thresholds=HEALTHY
    )
    plan, report = drive(live, rid)
    assert plan.phase == "promoted", plan.reason
    print(f"canary: {report.sent} requests, {report.failed} failed, {dict(report.served)}")
    assert_zero_failures(report)
    assert report.served[("2", "challenger")] > 0
    assert report.served[("1", "champion")] > 0
    assert report.served[("2", "champion")] > 0  # after the promotion
    events = rollout_history(settings, rid)
    # Too few samples in an interval holds a step (recorded); it never skips one.
    events = [e for e in events if e["action"] != "hold"]
    assert [e["action"] for e in events] == ["start", "advance", "advance", "advance", "promote"]
    assert [e["weight"] for e in events[1:4]] == [25, 50, 100]
    state = ControlPlane(settings).read()
    assert (state.champion, state.previous, state.challenger) == ("2", "1", None)
    # Within the 50 % step (once every worker has it) a caller stays on one variant.
    start = events[2]["ts"] + 2 * settings.reconcile_seconds + 1.5
    end = events[3]["ts"]
    step = [(variant, caller) for t, _v, variant, caller in report.timeline if start <= t < end]
    assert step, "no traffic in the 50 % step"
    variants_of: dict[str, set[str]] = {}
    for variant, caller in step:
        variants_of.setdefault(caller, set()).add(variant)
    assert all(len(v) == 1 for v in variants_of.values())
    challenger_share = sum(v == "challenger" for v, _ in step) / len(step)
    assert 0.3 < challenger_share < 0.7


def test_wrong_answers_are_rolled_back(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    thresholds = Thresholds(min_samples=40, max_p99_ms=500.0, max_disagreement=0.1)
    rid = start_rollout(
        settings,
        live.shuffled,
        "canary",
        steps="20,100",
        interval_s=30,
        warm_s=1.5,
        thresholds=thresholds,
    )
    plan, report = drive(live, rid)
    assert plan.phase == "rolled_back"
    assert plan.reason.startswith("disagreement")
    assert_zero_failures(report)
    rolled = decision_ts(settings, rid, "rollback")
    first_bad = report.first_answer_after(0, live.shuffled)
    last_bad = report.last_answer_from(live.shuffled)
    assert first_bad is not None
    assert last_bad is not None
    print(
        f"wrong answers: {report.sent} requests, {report.failed} failed; rollback "
        f"{rolled - first_bad:.1f}s after its first answer, last answer "
        f"{last_bad - rolled:+.2f}s from the decision"
    )
    # Out of traffic within one analysis interval of its first answer ...
    assert rolled - first_bad < 30
    # ... and no worker answers with it once the rollback has propagated.
    assert last_bad - rolled < 2 * settings.reconcile_seconds + 1.0
    state = ControlPlane(settings).read()
    assert (state.champion, state.challenger) == ("1", None)


def test_slow_challenger_is_rolled_back(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    thresholds = Thresholds(min_samples=30, max_p99_ms=6.0, max_disagreement=None)
    rid = start_rollout(
        settings,
        live.slow,
        "canary",
        steps="20,100",
        interval_s=30,
        warm_s=2,
        thresholds=thresholds,
    )
    plan, report = drive(live, rid)
    assert plan.phase == "rolled_back"
    assert plan.reason.startswith("p99_ms"), plan.reason
    assert_zero_failures(report)
    event = rollout_history(settings, rid)[-1]
    assert event["detail"]["verdict"]["challenger"]["p99_ms"] > 6.0
    last_slow = report.last_answer_from(live.slow)
    assert last_slow is not None
    print(
        f"slow: {report.sent} requests, {report.failed} failed; challenger p99 "
        f"{event['detail']['verdict']['challenger']['p99_ms']} ms; last answer "
        f"{last_slow - event['ts']:+.2f}s from the rollback"
    )
    assert last_slow - event["ts"] < 2 * settings.reconcile_seconds + 1.0


def test_unloadable_challenger_never_serves_and_is_rolled_back(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    thresholds = Thresholds(min_samples=30, max_p99_ms=500.0, max_inconclusive=2)
    rid = start_rollout(
        settings,
        live.tampered,
        "canary",
        steps="50,100",
        interval_s=2,
        warm_s=1,
        thresholds=thresholds,
    )
    plan, report = drive(live, rid)
    assert plan.phase == "rolled_back"
    assert "inconclusive 2 times" in plan.reason
    assert "challenger has 0/30 samples" in plan.reason
    assert_zero_failures(report, "unloadable")
    assert {v for v, _ in report.served} == {"1"}


def test_bluegreen_flips_all_traffic_at_once_then_promotes(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    rid = start_rollout(
        settings, "2", "bluegreen", interval_s=2, keep_warm_s=4, warm_s=1.5, thresholds=HEALTHY
    )
    plan, report = drive(live, rid)
    assert plan.phase == "promoted", plan.reason
    assert_zero_failures(report, "blue-green promote")
    flipped = decision_ts(settings, rid, "flip")
    # Before the flip nobody got v2; soon after it everybody did.
    assert all(v == "1" for t, v, _, _ in report.timeline if t < flipped)
    settle = flipped + 2 * settings.reconcile_seconds + 1.5
    late = [(round(t - flipped, 2), v) for t, v, _, _ in report.timeline if t > settle and v != "2"]
    assert not late, (
        f"{len(late)} answers by another version than 2 more than {settle - flipped:.1f} s "
        f"after the flip (s after it, version): {late[:5]}"
    )
    assert ControlPlane(settings).read().previous == "1"


def test_bluegreen_never_flips_to_a_version_failing_its_smoke_test(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    rid = start_rollout(
        settings,
        live.shuffled,
        "bluegreen",
        interval_s=2,
        keep_warm_s=4,
        warm_s=1.5,
        thresholds=HEALTHY,
    )
    plan, report = drive(live, rid, seconds=30)
    assert plan.phase == "rolled_back"
    assert plan.reason.startswith("smoke test failed: disagreement"), plan.reason
    assert_zero_failures(report, "blue-green smoke failure")
    assert {v for v, _ in report.served} == {"1"}


def test_bluegreen_abort_flips_back_instantly(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    start_rollout(
        settings,
        "2",
        "bluegreen",
        interval_s=60,
        keep_warm_s=120,
        warm_s=1.5,
        thresholds=HEALTHY,
    )
    traffic = Traffic(live.server.url, rate=RATE, threads=2).start(40)
    stop = threading.Event()
    controller = threading.Thread(target=Controller(settings).run, args=(stop,))
    controller.start()
    try:
        wait_for(lambda: live.server.versions_seen(10) == {("2", "challenger")}, 20, "the flip")
        aborted_at = time.time()
        out = request(settings, "abort", "integration test")
        answered = time.time()
        time.sleep(2 * settings.reconcile_seconds + 1.5)
    finally:
        stop.set()
        controller.join(10)
        report = traffic.stop()
    assert out["plan"]["phase"] == "aborted"
    assert_zero_failures(report, "blue-green abort")
    last_new = report.last_answer_from("2")
    assert last_new is not None
    rollback_s = last_new - aborted_at
    print(
        f"blue-green abort: command {answered - aborted_at:.2f}s, last v2 answer {rollback_s:.2f}s"
    )
    assert rollback_s < 2 * settings.reconcile_seconds + 1.0
    assert ControlPlane(settings).read().champion == "1"


def test_shadow_never_answers_and_is_compared(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    started = time.time()
    rid = start_rollout(settings, "2", "shadow", duration_s=5, interval_s=2, thresholds=HEALTHY)
    plan, report = drive(live, rid)
    assert plan.phase == "passed", plan.reason
    assert_zero_failures(report, "shadow")
    assert set(report.served) == {("1", "champion")}
    store = MonitorStore(settings.monitor_url)
    shadow = store.window(settings.project, version="2", since=started, variants=["shadow"])
    store.close()
    assert shadow.rows >= 40
    verdict = rollout_history(settings, rid)[-1]["detail"]["verdict"]
    assert verdict["challenger"]["compared"] >= 40
    assert verdict["challenger"]["disagreement_rate"] is not None


@pytest.mark.skipif(not HAS_FAULT_HOOK, reason="the server has no serve.test_faults hook yet")
def test_erroring_challenger_is_rolled_back(live: Live) -> None:
    settings = live.settings
    reset(settings, live.server, "1")
    thresholds = Thresholds(min_samples=30, max_p99_ms=500.0, max_error_rate=0.01)
    rid = start_rollout(
        settings,
        live.erroring,
        "canary",
        steps="20,100",
        interval_s=30,
        warm_s=1.5,
        thresholds=thresholds,
    )
    plan, report = drive(live, rid)
    assert plan.phase == "rolled_back"
    assert plan.reason.startswith("error_rate"), plan.reason
    # The server answers a failed challenger request with the champion: nobody sees it.
    assert_zero_failures(report)
