"""The evaluate step: metrics of the fitted Pipeline on the held-out rows, and the
confusion-matrix picture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)
from sklearn.pipeline import Pipeline

from petalops.data.load import Dataset
from petalops.pipeline.split import Split


@dataclass(frozen=True)
class Scores:
    """How the fitted Pipeline does on the held-out rows."""

    metrics: dict[str, float]
    confusion: list[list[int]]


def evaluate(pipeline: Pipeline, split: Split, dataset: Dataset) -> Scores:
    """Score the fitted Pipeline on the test split."""
    frame = split.frame(split.x_test)
    proba = pipeline.predict_proba(frame)
    # the class served: the estimator's own predict (SVC's is not the most probable class)
    y_pred = np.asarray(pipeline.predict(frame), dtype=np.int64)
    return Scores(
        metrics=classification_metrics(split.y_test, y_pred, proba, dataset.classes),
        confusion=confusion(split.y_test, y_pred, len(dataset.classes)),
    )


def classification_metrics(
    y_true: npt.NDArray[np.int64],
    y_pred: npt.NDArray[np.int64],
    proba: npt.NDArray[np.float64],
    classes: list[str],
) -> dict[str, float]:
    labels = list(range(len(classes)))
    precision, recall, _, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    metrics = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "log_loss": float(log_loss(y_true, proba, labels=labels)),
    }
    for name, p, r in zip(classes, precision, recall, strict=True):
        metrics[f"precision_{name}"] = float(p)
        metrics[f"recall_{name}"] = float(r)
    return metrics


def confusion(
    y_true: npt.NDArray[np.int64], y_pred: npt.NDArray[np.int64], n_classes: int
) -> list[list[int]]:
    labels = list(range(n_classes))
    matrix: list[list[int]] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return matrix
