"""Live quality: accuracy and macro-F1 over a sliding window of labelled predictions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class QualityRow:
    model_version: str
    variant: str
    labelled: int
    accuracy: float
    macro_f1: float

    def to_json(self) -> dict[str, Any]:
        return {
            "model_version": self.model_version,
            "variant": self.variant,
            "labelled": self.labelled,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
        }


def accuracy(predicted: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]) -> float:
    return float(np.mean(predicted == labels)) if len(labels) else float("nan")


def macro_f1(predicted: npt.NDArray[np.int64], labels: npt.NDArray[np.int64]) -> float:
    """Unweighted mean of per-class F1 over the classes seen in labels or predictions.

    Same definition as ``sklearn.metrics.f1_score(average="macro")`` (a class with no true
    and no predicted positives counts 0), without importing scikit-learn into the server.
    """
    if not len(labels):
        return float("nan")
    scores = []
    for cls in np.union1d(predicted, labels):
        tp = float(np.sum((predicted == cls) & (labels == cls)))
        fp = float(np.sum((predicted == cls) & (labels != cls)))
        fn = float(np.sum((predicted != cls) & (labels == cls)))
        denominator = 2 * tp + fp + fn
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def live_quality(store: Any, model_name: str, window: int) -> list[QualityRow]:
    """Accuracy and macro-F1 of the newest ``window`` labelled rows per version and variant."""
    return [
        QualityRow(
            model_version=group.model_version,
            variant=group.variant,
            labelled=len(group.labels),
            accuracy=accuracy(group.predictions, group.labels),
            macro_f1=macro_f1(group.predictions, group.labels),
        )
        for group in store.labelled(model_name, window)
        if len(group.labels)
    ]
