"""The side channel's shadow rows: the shadow's own answer and latency, never the champion's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from petalops.monitoring.record import answer_records
from petalops.rollout.routing import TrafficPolicy
from petalops.runtime.model import ModelRuntime, open_bundle
from petalops.serving.accesslog import JsonLog
from petalops.serving.holder import Served, Snapshot
from petalops.serving.metrics import RequestMetrics
from petalops.serving.prediction import Prediction
from petalops.serving.sidechannel import SideChannel, records


class Slow(ModelRuntime):
    """A real runtime that takes ``delay`` longer per prediction (a heavier model)."""

    def __init__(self, inner: ModelRuntime, delay: float) -> None:
        self.__dict__.update(inner.__dict__)
        self.inner = inner
        self.delay = delay

    def predict_one(self, row: list[float]) -> tuple[int, list[float]]:
        time.sleep(self.delay)
        return self.inner.predict_one(row)

    def predict_proba(self, x: Any) -> Any:
        time.sleep(self.delay)
        return self.inner.predict_proba(x)


class Sink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def log_many(self, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)

    def log_answer(self, *answer: Any) -> int:
        made = answer_records(*answer)  # the records a BoundedSink makes of an answer
        self.records.extend(made)
        return len(made)

    def close(self, timeout: float = 10.0) -> None:
        pass


def served(runtime: ModelRuntime, version: str) -> Served:
    return Served(runtime, "iris", version, "sha", [4.0] * 4, [8.0] * 4)


def test_shadow_rows_carry_the_shadows_latency(
    bundle_dirs: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    path, digest = bundle_dirs["1"]
    champion = served(open_bundle(path, "iris", "1", digest), "1")
    path2, digest2 = bundle_dirs["2"]
    shadow = served(Slow(open_bundle(path2, "iris", "2", digest2), 0.05), "2")
    policy = TrafficPolicy("shadow", 0.0, 0, "r-1")
    assert policy.shadow
    snapshot = Snapshot(champion=champion, challenger=shadow, policy=policy)
    rows = [[5.1, 3.5, 1.4, 0.2]]
    labels, probas = [0], [[0.98, 0.02, 0.0]]
    prediction = Prediction(snapshot=snapshot, served=champion, variant="champion", rows=rows, labels=labels, probas=probas)  # fmt: skip
    sink = Sink()
    with (tmp_path / "log").open("wb") as out:
        channel = SideChannel(RequestMetrics(), JsonLog(out.fileno()), sink)
        channel.predicted("req-1", "/predict", prediction, 0.002)
    assert channel.failures == 0
    by_variant = {r["variant"]: r for r in sink.records}
    assert set(by_variant) == {"champion", "shadow"}
    assert by_variant["champion"]["latency_ms"] == 2.0
    shadow_ms = by_variant["shadow"]["latency_ms"]
    assert 50.0 <= shadow_ms < 2.0 + 50.0 + 40.0, shadow_ms  # request + the shadow's extra 50 ms
    assert by_variant["shadow"]["model_version"] == "2"
    assert by_variant["shadow"]["reference_prediction"] == 0


def test_a_failed_answer_is_one_row_without_features_or_prediction(
    bundle_dirs: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    path, digest = bundle_dirs["2"]
    challenger = served(open_bundle(path, "iris", "2", digest), "2")
    sink = Sink()
    with (tmp_path / "log").open("wb") as out:
        channel = SideChannel(RequestMetrics(), JsonLog(out.fileno()), sink)
        channel.variant_failed("req-2", "/v1/predict", challenger, "challenger", RuntimeError("x"))
    assert channel.failures == 0
    [record] = sink.records
    assert record.pop("ts") > 0
    assert record == {
        "request_id": "req-2",
        "row": 0,
        "model_name": "iris",
        "model_version": "2",
        "variant": "challenger",
        "route": "/v1/predict",
        "status": 500,
        "latency_ms": None,
        "features": None,
        "prediction": None,
        "class_name": None,
        "probabilities": None,
        "reference_prediction": None,
    }


def test_rows_of_a_batch_share_the_request_and_name_their_class(
    bundle_dirs: dict[str, tuple[Path, str]],
) -> None:
    path, digest = bundle_dirs["1"]
    champion = served(open_bundle(path, "iris", "1", digest), "1")
    rows = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
    out = records("r", "/invocations", champion, "challenger", 200, 1.5, rows, [0, 2], [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], [0, 1])  # fmt: skip
    assert [(r["row"], r["class_name"], r["reference_prediction"]) for r in out] == [
        (0, "setosa", 0),
        (1, "virginica", 1),
    ]
    assert {r["ts"] for r in out} == {out[0]["ts"]}
    assert all(r["latency_ms"] == 1.5 and r["features"] is rows[r["row"]] for r in out)


def test_a_refusal_is_logged_as_a_row_without_values(
    bundle_dirs: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    from petalops.serving.http import HttpError
    from petalops.serving.inputquality import InputQuality

    path, digest = bundle_dirs["1"]
    champion = served(open_bundle(path, "iris", "1", digest), "1")
    sink = Sink()
    metrics = RequestMetrics()
    quality = InputQuality(metrics, model_name="iris", features=["a", "b", "c", "d"])
    side = SideChannel(metrics, JsonLog(enabled=False), sink, quality)  # type: ignore[arg-type]
    bad = HttpError(400, "features[1] must be a number", "features[1]")
    side.refused("r1", "/predict", champion, "champion", bad, 0.001)
    side.refused("r2", "/predict", None, "", HttpError(400, "not JSON", "body"), 0.001)
    side.refused("r3", "/predict", None, "", HttpError(413, "too large", "body"), 0.001)
    assert [(r["request_id"], r["model_version"], r["status"]) for r in sink.records] == [
        ("r1", "1", 400),
        ("r2", "", 400),
    ]
    assert sink.records[1]["model_name"] == "iris"
    assert all(r["features"] is None and r["prediction"] is None for r in sink.records)
    # the version that was to answer names its features; before one was chosen: the shape's
    assert metrics.values == {("1", "sepal_width", "refused"): 1, ("", "_request", "refused"): 1}
    assert side.failures == 0
