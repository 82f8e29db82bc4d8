"""What one request predicted: what its codec encodes and its side channel logs."""

from __future__ import annotations

from dataclasses import dataclass

from petalops.serving.holder import Served, Snapshot


@dataclass(slots=True)
class Prediction:
    """The rows of a request, the runtime and variant that answered them, and the answers."""

    snapshot: Snapshot
    served: Served
    variant: str
    rows: list[list[float]]
    labels: list[int]
    probas: list[list[float]]
