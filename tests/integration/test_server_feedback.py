"""`POST /v1/feedback` on a real server: labels join logged predictions by request id."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from tests.utils.server_process import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _labels(home: Path, request_id: str) -> list[int | None]:
    with sqlite3.connect(home / "monitor.db") as con:
        rows = con.execute(
            "SELECT label FROM predictions WHERE request_id=? AND variant='champion' ORDER BY row",
            (request_id,),
        ).fetchall()
    return [r[0] for r in rows]


def test_feedback_joins_labels_and_refuses_bad_ones(
    _session_stores: dict[str, Path], tmp_path: Path
) -> None:
    home = tmp_path / ".petalops"
    shutil.copytree(_session_stores["trained"], home, ignore=shutil.ignore_patterns("cache"))
    server = ServerProcess(home, workers=2)
    try:
        server.wait_until("/readyz")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            one = client.post(
                "/predict",
                json={"features": [6.7, 3.0, 5.2, 2.3]},
                headers={"X-Request-ID": "fb-one"},
            )
            assert one.status_code == 200
            batch = client.post(
                "/v1/predict",
                headers={"X-Request-ID": "fb-batch"},
                json={
                    "instances": [
                        {
                            "sepal_length": 5.1,
                            "sepal_width": 3.5,
                            "petal_length": 1.4,
                            "petal_width": 0.2,
                        },
                        {
                            "sepal_length": 7.0,
                            "sepal_width": 3.2,
                            "petal_length": 4.7,
                            "petal_width": 1.4,
                        },
                    ]
                },
            )
            assert batch.status_code == 200
            # The answer is written to the log off the request path: a label sent before its
            # row is loaded waits for it ("pending") and is joined when it arrives.
            ok = client.post("/v1/feedback", json={"request_id": "fb-one", "label": "virginica"})
            assert ok.status_code == 200, ok.text
            assert ok.json()["labelled"] + ok.json()["pending"] == 1
            items = client.post(
                "/v1/feedback",
                json={
                    "items": [
                        {"request_id": "fb-batch", "row": 0, "label": 0},
                        {"request_id": "fb-batch", "row": 1, "label": "versicolor"},
                    ]
                },
            )
            assert items.status_code == 200, items.text
            assert items.json()["labelled"] + items.json()["pending"] == 2

            unknown = client.post("/v1/feedback", json={"request_id": "never", "label": "setosa"})
            assert unknown.json() == {"labelled": 0, "pending": 1}
            relabel = client.post("/v1/feedback", json={"request_id": "fb-one", "label": "setosa"})
            assert relabel.status_code == 409, relabel.text
            assert "already labelled 'virginica'" in relabel.json()["error"]
            bad = client.post("/v1/feedback", json={"request_id": "fb-one", "label": "rose"})
            assert bad.status_code == 422
            assert "rose" in bad.json()["error"]
            # All or nothing: a batch with one bad label labels nothing.
            mixed = client.post(
                "/v1/feedback",
                json=[
                    {"request_id": "fb-one", "label": "setosa"},
                    {"request_id": "fb-one", "label": "rose"},
                ],
            )
            assert mixed.status_code == 422
            assert "/v1/feedback" in client.get("/openapi.json").json()["paths"]
        deadline = time.monotonic() + 10
        while _labels(home, "fb-batch") != [0, 1] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _labels(home, "fb-one") == [2]
        assert _labels(home, "fb-batch") == [0, 1]
    finally:
        server.stop()


def test_feedback_right_after_each_prediction_is_never_lost(
    _session_stores: dict[str, Path], tmp_path: Path
) -> None:
    home = tmp_path / ".petalops"
    shutil.copytree(_session_stores["trained"], home, ignore=shutil.ignore_patterns("cache"))
    server = ServerProcess(home, workers=2)
    answers = []
    try:
        server.wait_until("/readyz")
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(20):
                rid = f"quick-{i}"
                headers = {"X-Request-ID": rid, "Connection": "close"}
                predicted = client.post(
                    "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, headers=headers
                )
                assert predicted.status_code == 200
                answers.append(
                    client.post(
                        "/v1/feedback",
                        json={"request_id": rid, "label": "setosa"},
                        headers={"Connection": "close"},
                    )
                )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if all(_labels(home, f"quick-{i}") == [0] for i in range(20)):
                break
            time.sleep(0.2)
    finally:
        server.stop()
    statuses = [a.status_code for a in answers]
    print(f"\nfeedback right after its prediction: {statuses.count(200)} of 20 answered 200")
    assert statuses == [200] * 20, [a.text for a in answers]
    assert [_labels(home, f"quick-{i}") for i in range(20)] == [[0]] * 20
