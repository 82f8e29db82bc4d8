"""Stand-ins for the closed loop's trainer, rollout starter and clock that record their calls
(tests/integration/test_monitor_loop.py runs the real pipeline and controller)."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from petalops.config import Settings
from petalops.errors import GateFailedError
from petalops.monitoring.store import MonitorStore
from petalops.pipeline.gate import GateResult
from petalops.pipeline.run import TrainResult


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class RecordingTrainer:
    """Keeps the retraining data it was given; "registers" versions 11, 12, … as challenger."""

    def __init__(self, fail: bool = False, alias: str = "challenger") -> None:
        self.calls: list[pd.DataFrame] = []
        self.fail = fail
        self.alias = alias

    def __call__(self, settings: Settings, data_path: Path) -> TrainResult:
        self.calls.append(pd.read_csv(data_path))
        if self.fail:
            raise GateFailedError("quality gate failed, nothing registered: accuracy 0.5 < 0.9")
        return TrainResult(
            metrics={"accuracy": 0.97},
            gate=GateResult([]),
            run_id=f"run{len(self.calls)}",
            version=str(10 + len(self.calls)),
            alias=self.alias,
        )


class RecordingStarter:
    def __init__(self, rollout_id: str | None = "r-1") -> None:
        self.calls: list[tuple[str, str]] = []
        self.rollout_id = rollout_id

    def __call__(self, settings: Settings, version: str, strategy: str) -> str | None:
        self.calls.append((version, strategy))
        return self.rollout_id


def kinds(store: MonitorStore) -> list[str]:
    """The kinds of the store's loop events, oldest first."""
    return [e["kind"] for e in store.events(limit=100)]
