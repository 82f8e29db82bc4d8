"""Test-only fault injection: make a registered version fail or slow down on live requests.

Off unless ``serve.test_faults`` is set; then a version tagged ``petalops.test_fault`` with
``error`` (every prediction raises), ``error:0.3`` (a share of them) or ``delay_ms:40``
misbehaves after its warm-up, so rollout tests can prove a bad challenger is caught.
"""

from __future__ import annotations

import random
import time
from typing import Any

from petalops.runtime.model import FloatArray, IntArray, ModelRuntime

FAULT_TAG = "petalops.test_fault"


class InjectedFault(RuntimeError):
    """The failure a faulty version raises on purpose."""


class FaultyRuntime(ModelRuntime):
    """Wraps a runtime; behaves normally until ``arm()`` (called after the warm-up)."""

    def __init__(self, inner: ModelRuntime, spec: str) -> None:
        super().__init__(inner.manifest, inner.name, inner.version)
        self.inner = inner
        self.opened_in = inner.opened_in
        kind, _, value = spec.partition(":")
        self.error_share = float(value or 1.0) if kind == "error" else 0.0
        self.delay = float(value or 0.0) / 1000.0 if kind == "delay_ms" else 0.0
        self.armed = False

    def arm(self) -> None:
        self.armed = True

    def _misbehave(self) -> None:
        if not self.armed:
            return
        if self.delay:
            time.sleep(self.delay)
        if self.error_share and random.random() < self.error_share:
            raise InjectedFault(f"injected fault in version {self.version}")

    def predict_proba(self, x: FloatArray) -> FloatArray:
        self._misbehave()
        return self.inner.predict_proba(x)

    def predict(self, x: FloatArray) -> IntArray:
        self._misbehave()
        return self.inner.predict(x)

    def predict_one(self, row: list[float]) -> tuple[int, list[float]]:
        self._misbehave()
        return self.inner.predict_one(row)


def with_faults(runtime: ModelRuntime, tags: dict[str, Any]) -> ModelRuntime:
    spec = tags.get(FAULT_TAG)
    return FaultyRuntime(runtime, str(spec)) if spec else runtime
