"""A quality gate's verdict as plain data: its checks, passed or not, and why.

Apart from `gate.py` (which needs numpy and the runtime) so that a `train
--skip-if-unchanged` that finds nothing to do reports its result without importing either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass(frozen=True)
class GateResult:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def reason(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.failures)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [c.to_json() for c in self.checks]}
