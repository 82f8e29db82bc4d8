"""The quality gate: metrics thresholds, the champion comparison and model behaviour tests.

Pure functions of a runtime and held-out data, so that every check is unit-testable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from petalops.config import GateSettings
from petalops.pipeline.checks import Check as Check
from petalops.pipeline.checks import GateResult as GateResult
from petalops.runtime.model import ModelRuntime


def run_gate(
    runtime: ModelRuntime,
    metrics: dict[str, float],
    x_test: npt.NDArray[Any],
    gate: GateSettings,
    champion_accuracy: float | None,
    champion_version: str | None = None,
    seed: int = 42,
) -> GateResult:
    """Every gate check on the compiled model (the one that will serve)."""
    checks = [
        Check(
            "min_accuracy",
            metrics["accuracy"] >= gate.min_accuracy,
            f"accuracy {metrics['accuracy']:.4f} vs floor {gate.min_accuracy:.4f}",
        )
    ]
    if champion_accuracy is not None:
        floor = champion_accuracy - gate.max_regression
        checks.append(
            Check(
                "champion_regression",
                metrics["accuracy"] >= floor - 1e-12,
                f"accuracy {metrics['accuracy']:.4f} vs champion v{champion_version} "
                f"{champion_accuracy:.4f} - {gate.max_regression:.4f} allowed",
            )
        )
    if gate.min_class_recall > 0:
        low = {
            k.removeprefix("recall_"): v
            for k, v in metrics.items()
            if k.startswith("recall_") and v < gate.min_class_recall
        }
        checks.append(
            Check(
                "min_class_recall",
                not low,
                f"classes below recall {gate.min_class_recall}: {low}" if low else "all classes ok",
            )
        )
    if gate.known_examples:
        checks.append(_known_examples(runtime, gate))
    if gate.invariance and len(x_test):
        checks.extend(_invariance(runtime, x_test, gate, seed))
    return GateResult(checks)


def _known_examples(runtime: ModelRuntime, gate: GateSettings) -> Check:
    wrong = []
    dtype = object if runtime.mixed else np.float64
    for example in gate.known_examples:
        expected = (
            runtime.classes[example.label]
            if isinstance(example.label, int) and not isinstance(example.label, bool)
            else str(example.label)
        )
        features = example.features
        if isinstance(features, dict):
            absent = [name for name in features if name not in runtime.features]
            if absent:
                wrong.append(f"{features} names {absent[0]!r}, not a feature")
                continue
            features = [features.get(name) for name in runtime.features]
        if len(features) != runtime.n_features:
            wrong.append(f"{example.features} has {len(features)} features")
            continue
        row = [np.nan if v is None and not runtime.mixed else v for v in features]
        got = runtime.classes[int(runtime.predict(np.asarray([row], dtype=dtype))[0])]
        if got != expected:
            wrong.append(f"{example.features} -> {got} (expected {expected})")
    return Check(
        "known_examples",
        not wrong,
        "; ".join(wrong) if wrong else f"{len(gate.known_examples)} examples keep their class",
    )


def _moved(runtime: ModelRuntime, x: npt.NDArray[Any], factor: float) -> npt.NDArray[Any]:
    """``x`` with every numeric feature times ``factor``, clipped to the training range;
    categorical values stay as they are."""
    if not runtime.mixed:
        return np.clip(x * factor, runtime.feature_min, runtime.feature_max)
    moved = x.copy()
    for j in runtime.numeric_columns:
        values = np.asarray([np.nan if v is None else v for v in x[:, j]], dtype=np.float64)
        clipped = np.clip(values * factor, runtime.feature_min[j], runtime.feature_max[j])
        moved[:, j] = clipped.astype(object)
    return moved


def _invariance(
    runtime: ModelRuntime, x: npt.NDArray[Any], gate: GateSettings, seed: int
) -> list[Check]:
    proba = runtime.predict_proba(x)
    base = runtime.predict(x)
    order = np.random.default_rng(seed).permutation(len(x))
    shuffled = runtime.predict(x[order])
    order_ok = bool((shuffled == base[order]).all())
    checks = [
        Check(
            "row_order_invariance",
            order_ok,
            "predictions do not depend on row order"
            if order_ok
            else "predictions change when rows are reordered",
        )
    ]
    if gate.scale_tolerance > 0:
        flips = np.zeros(len(x), dtype=bool)
        for factor in (1 - gate.scale_tolerance, 1 + gate.scale_tolerance):
            flips |= runtime.predict(_moved(runtime, x, factor)) != base
        # A row the model itself is unsure of sits by a class boundary, where any model's
        # answer moves with its features; a confident answer that a nudge overturns is the
        # instability this check is for.
        confident = proba.max(axis=1) >= gate.flip_confidence
        judged = flips & confident
        rate = float(judged.sum() / max(int(confident.sum()), 1))
        near = int((flips & ~confident).sum())
        shown = x[judged][:3]
        examples = (
            shown.round(3).tolist()
            if not runtime.mixed
            else [[_short(v) for v in row] for row in shown.tolist()]
        )
        detail = (
            f"{rate:.1%} of confident rows (p >= {gate.flip_confidence:g}) change class when "
            f"numeric features move by ±{gate.scale_tolerance:.0%} (limit {gate.max_flip_rate:.0%})"
        )
        if near:
            detail += f"; {near} less confident row(s) by a class boundary changed too"
        checks.append(
            Check(
                "scale_tolerance",
                rate <= gate.max_flip_rate,
                detail + (f"; e.g. {examples}" if examples else ""),
            )
        )
    return checks


def _short(value: Any) -> Any:
    return round(value, 3) if isinstance(value, float) else value
