"""Drift of a live window against the reference profile stored with the model version.

Per numerical feature: the two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``)
against the profile's raw ``sample``, and the population stability index over the
profile's histogram bins (quantile bins when no histogram is stored). Predicted classes:
a chi-square goodness-of-fit test (``scipy.stats.chisquare``) against the reference
prediction balance.

Sample-size aware. A p-value alone flags any tiny difference once the window is large,
so a feature drifts only when the shift is both significant (p < ``drift_p_value``) and
large enough to matter (KS statistic >= ``drift_min_effect`` or PSI >= ``drift_psi``).
A window with fewer than ``drift_min_rows`` rows is reported as too small, not judged.
The dataset drifts when at least ``drift_share`` of the features drift.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from petalops.errors import DataError

PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class DriftThresholds:
    p_value: float = 0.01
    psi: float = 0.2
    min_effect: float = 0.1
    min_rows: int = 50
    share: float = 0.5

    @classmethod
    def from_settings(cls, monitor: Any) -> DriftThresholds:
        return cls(
            p_value=monitor.drift_p_value,
            psi=monitor.drift_psi,
            min_effect=monitor.drift_min_effect,
            min_rows=monitor.drift_min_rows,
            share=monitor.drift_share,
        )


@dataclass
class FeatureDrift:
    name: str
    drift: bool
    statistic: float
    p_value: float
    psi: float
    reference_mean: float
    current_mean: float
    test: str = "ks"

    def to_json(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "test": self.test,
            "statistic": _clean(self.statistic),
            "p_value": _clean(self.p_value),
            "psi": _clean(self.psi),
            "reference_mean": _clean(self.reference_mean),
            "current_mean": _clean(self.current_mean),
        }


@dataclass
class PredictionDrift:
    drift: bool
    statistic: float | None
    p_value: float | None
    distance: float
    reference: dict[str, float]
    current: dict[str, float]
    test: str = "chi2"

    def to_json(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "test": self.test,
            "statistic": _clean(self.statistic),
            "p_value": _clean(self.p_value),
            "distance": _clean(self.distance),
            "reference": self.reference,
            "current": self.current,
        }


@dataclass
class DriftReport:
    dataset_drift: bool
    sufficient: bool
    features: dict[str, FeatureDrift]
    prediction: PredictionDrift | None
    window: dict[str, Any]
    thresholds: DriftThresholds
    reason: str = ""
    feature_names: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        return [name for name, f in self.features.items() if f.drift]

    def to_json(self) -> dict[str, Any]:
        """The ``petalops monitor drift --json`` document."""
        if self.sufficient:
            features = {name: f.to_json() for name, f in self.features.items()}
        else:
            features = {
                name: {
                    "drift": False,
                    "test": "ks",
                    "statistic": None,
                    "p_value": None,
                    "psi": None,
                }
                for name in self.feature_names
            }
        out: dict[str, Any] = {
            "dataset_drift": self.dataset_drift,
            "features": features,
            "prediction_drift": self.prediction.to_json()
            if self.prediction is not None
            else {"drift": False, "test": "chi2", "statistic": None, "p_value": None},
            "window": self.window,
            "thresholds": {
                "p_value": self.thresholds.p_value,
                "psi": self.thresholds.psi,
                "min_effect": self.thresholds.min_effect,
                "min_rows": self.thresholds.min_rows,
                "share": self.thresholds.share,
            },
        }
        if self.reason:
            out["reason"] = self.reason
        return out


def _clean(value: float | None) -> float | None:
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return 1e308 if value > 0 else -1e308
    return float(value)


def _bins(spec: dict[str, Any]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Inner bin edges and reference bin shares from a profile feature."""
    histogram = spec.get("histogram")
    if histogram and histogram.get("counts"):
        edges = np.asarray(histogram["edges"], dtype=np.float64)
        counts = np.asarray(histogram["counts"], dtype=np.float64)
        shares = counts / counts.sum()
        return edges[1:-1], shares
    quantiles = spec.get("quantiles") or {}
    if len(quantiles) < 3:
        raise DataError("the reference profile has neither a histogram nor quantiles")
    levels = np.asarray(sorted(float(q) for q in quantiles), dtype=np.float64)
    values = np.asarray([quantiles[k] for k in sorted(quantiles, key=float)], dtype=np.float64)
    # Between two stored quantiles lies the difference of their levels of the mass.
    return values[1:-1], np.diff(levels)


def population_stability_index(
    inner_edges: npt.NDArray[np.float64],
    reference_shares: npt.NDArray[np.float64],
    current: npt.NDArray[np.float64],
) -> float:
    """PSI = sum((c - r) * ln(c / r)) over bins whose outer edges extend to +-infinity."""
    index = np.searchsorted(inner_edges, current, side="right")
    counts = np.bincount(index, minlength=len(reference_shares)).astype(np.float64)
    current_shares = counts / max(counts.sum(), 1.0)
    r = np.clip(reference_shares, PSI_EPSILON, None)
    c = np.clip(current_shares, PSI_EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


def feature_drift(
    name: str,
    spec: dict[str, Any],
    current: npt.NDArray[np.float64],
    thresholds: DriftThresholds,
) -> FeatureDrift:
    reference = np.asarray(spec["sample"], dtype=np.float64)
    result = stats.ks_2samp(reference, current)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    inner, shares = _bins(spec)
    psi = population_stability_index(inner, shares, current)
    drift = p_value < thresholds.p_value and (
        statistic >= thresholds.min_effect or psi >= thresholds.psi
    )
    return FeatureDrift(
        name=name,
        drift=bool(drift),
        statistic=statistic,
        p_value=p_value,
        psi=psi,
        reference_mean=float(spec.get("mean", reference.mean())),
        current_mean=float(current.mean()),
    )


def prediction_drift(
    profile: dict[str, Any], predicted: npt.NDArray[np.int64], thresholds: DriftThresholds
) -> PredictionDrift:
    classes = [str(c) for c in profile["classes"]]
    balance = profile.get("prediction_balance") or profile.get("class_balance") or {}
    expected = np.asarray([float(balance.get(c, 0.0)) for c in classes], dtype=np.float64)
    expected = np.clip(expected, 1e-6, None)
    expected /= expected.sum()
    counts = np.bincount(predicted, minlength=len(classes))[: len(classes)].astype(np.float64)
    n = counts.sum()
    current = counts / n if n else counts
    distance = float(0.5 * np.abs(current - expected).sum())
    if n == 0:
        return PredictionDrift(False, None, None, distance, {}, {})
    result = stats.chisquare(counts, expected * n)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    return PredictionDrift(
        drift=bool(p_value < thresholds.p_value and distance >= thresholds.min_effect),
        statistic=statistic,
        p_value=p_value,
        distance=distance,
        reference={c: round(float(v), 4) for c, v in zip(classes, expected, strict=True)},
        current={c: round(float(v), 4) for c, v in zip(classes, current, strict=True)},
    )


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def drift_report(
    window: Any,
    profile: dict[str, Any],
    thresholds: DriftThresholds | Any,
    *,
    reference: str = "",
) -> DriftReport:
    """Compare a :class:`~petalops.monitoring.store.Window` with a reference profile.

    ``thresholds`` is a :class:`DriftThresholds` or the ``monitor`` settings section.
    """
    if not isinstance(thresholds, DriftThresholds):
        thresholds = DriftThresholds.from_settings(thresholds)
    names = list(profile["features"])
    rows = int(window.features.shape[0])
    info: dict[str, Any] = {
        "rows": rows,
        "min_rows": thresholds.min_rows,
        "sufficient": rows >= thresholds.min_rows,
        "from": _iso(float(window.ts[0])) if rows else None,
        "to": _iso(float(window.ts[-1])) if rows else None,
        "versions": dict(window.versions),
        "reference": reference,
        "reference_rows": int(profile.get("rows", 0)),
    }
    if rows < thresholds.min_rows:
        return DriftReport(
            dataset_drift=False,
            sufficient=False,
            features={},
            prediction=None,
            window=info,
            thresholds=thresholds,
            reason=f"window too small to judge: {rows} rows, need at least "
            f"{thresholds.min_rows} (monitor.drift_min_rows); wait for more traffic or widen it",
            feature_names=names,
        )
    if window.features.shape[1] != len(names):
        raise DataError(
            f"logged rows have {window.features.shape[1]} features but the reference profile "
            f"has {len(names)} ({', '.join(names)}); pick the matching --version"
        )
    features = {
        name: feature_drift(name, profile["features"][name], window.features[:, j], thresholds)
        for j, name in enumerate(names)
    }
    drifted = sum(1 for f in features.values() if f.drift)
    share = drifted / len(names) if names else 0.0
    info["drifted_features"] = drifted
    return DriftReport(
        dataset_drift=bool(names) and share >= thresholds.share,
        sufficient=True,
        features=features,
        prediction=prediction_drift(profile, window.predictions, thresholds),
        window=info,
        thresholds=thresholds,
        feature_names=names,
    )
