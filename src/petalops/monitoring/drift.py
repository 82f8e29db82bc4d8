"""Drift of a live window against the reference profile stored with the model version.

Per numerical feature: every statistic of :mod:`petalops.monitoring.statistics` (shipped:
the two-sample Kolmogorov-Smirnov test against the profile's raw ``sample``, and the
population stability index over its histogram bins). Predicted classes: a chi-square
goodness-of-fit test (``scipy.stats.chisquare``) against the reference prediction balance.

Sample-size aware. A p-value alone flags any tiny difference once the window is large,
so a feature drifts only when the shift is both significant (every significance statistic:
p < ``drift_p_value``) and large enough to matter (some statistic reaches its threshold:
KS statistic >= ``drift_min_effect`` or PSI >= ``drift_psi``).
A window with fewer than ``drift_min_rows`` rows is reported as too small, not judged: its
verdicts are ``None`` (JSON ``null``) with the reason, never ``False``.

Categorical features are measured on their category frequencies (chi-square and PSI, see
:mod:`petalops.monitoring.statistics`). For every feature the share of missing values is
compared with training's, and for a categorical one the share of categories never seen in
training is reported: either rising by ``drift_min_effect`` or more is drift by itself.
The dataset drifts when at least ``drift_share`` of the features drift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from petalops.data.schema import is_missing
from petalops.errors import DataError
from petalops.monitoring.statistics import DriftStatistic, category_shares, registered

# The statistic whose value and p-value ``FeatureDrift.to_json`` also shows under the keys
# of the report before statistics were registered ("statistic", "p_value"), and PSI's.
_COMPAT_TEST = "ks"
_COMPAT_PSI = "psi"


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

    def threshold(self, statistic: DriftStatistic) -> float:
        """The threshold of ``statistic``: its setting's value, else its own default."""
        if statistic.setting is None:
            return statistic.threshold
        return float(getattr(self, statistic.setting))


@dataclass(frozen=True)
class Measured:
    """One statistic on one feature: what it measured against its threshold."""

    name: str
    value: float
    p_value: float | None
    threshold: float

    @property
    def reached(self) -> bool:
        """The value is at or above the threshold (NaN never is)."""
        return bool(self.value >= self.threshold)

    def significant(self, p_value: float) -> bool:
        """The statistic's p-value is below ``p_value`` (no or a NaN p-value never is)."""
        return self.p_value is not None and bool(self.p_value < p_value)

    def to_json(self) -> dict[str, Any]:
        return {
            "value": _clean(self.value),
            "p_value": _clean(self.p_value),
            "threshold": self.threshold,
            "reached": self.reached,
        }


@dataclass
class FeatureDrift:
    """The verdict on one feature and every statistic measured on it, by name."""

    name: str
    drift: bool
    statistics: dict[str, Measured]
    reference_mean: float
    current_mean: float
    test: str = _COMPAT_TEST
    kind: str = "numeric"
    reference_missing: float = 0.0
    current_missing: float = 0.0
    new_category_share: float | None = None  # categorical: live values never seen in training
    # categorical: category -> share in training and in the window (the HTML bar chart)
    reference_shares: dict[str, float] = field(default_factory=dict)
    current_shares: dict[str, float] = field(default_factory=dict)

    def value(self, statistic: str) -> float | None:
        measured = self.statistics.get(statistic)
        return measured.value if measured is not None else None

    @property
    def statistic(self) -> float | None:
        """The value of the significance test (``test``): the KS statistic."""
        return self.value(self.test)

    @property
    def p_value(self) -> float | None:
        measured = self.statistics.get(self.test)
        return measured.p_value if measured is not None else None

    @property
    def psi(self) -> float | None:
        return self.value(_COMPAT_PSI)

    def to_json(self) -> dict[str, Any]:
        return {
            "drift": self.drift,
            "test": self.test,
            "statistic": _clean(self.statistic),
            "p_value": _clean(self.p_value),
            "psi": _clean(self.psi),
            "reference_mean": _clean(self.reference_mean),
            "current_mean": _clean(self.current_mean),
            "statistics": {name: m.to_json() for name, m in self.statistics.items()},
            "kind": self.kind,
            "missing": {"reference": self.reference_missing, "current": self.current_missing},
            **(
                {
                    "new_category_share": self.new_category_share,
                    "categories": {
                        "reference": self.reference_shares,
                        "current": self.current_shares,
                    },
                }
                if self.kind == "categorical"
                else {}
            ),
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
    dataset_drift: bool | None  # None: the window was too small to judge
    sufficient: bool
    features: dict[str, FeatureDrift]
    prediction: PredictionDrift | None
    window: dict[str, Any]
    thresholds: DriftThresholds
    reason: str = ""
    feature_names: list[str] = field(default_factory=list)
    statistics: tuple[DriftStatistic, ...] = field(default_factory=registered)

    @property
    def drifted(self) -> list[str]:
        return [name for name, f in self.features.items() if f.drift]

    def to_json(self) -> dict[str, Any]:
        """The ``petalops monitor drift --json`` document."""
        if self.sufficient:
            features = {name: f.to_json() for name, f in self.features.items()}
        else:
            unmeasured = {
                statistic.name: {
                    "value": None,
                    "p_value": None,
                    "threshold": self.thresholds.threshold(statistic),
                    "reached": None,
                }
                for statistic in self.statistics
            }
            features = {
                name: {
                    "drift": None,
                    "test": _COMPAT_TEST,
                    "statistic": None,
                    "p_value": None,
                    "psi": None,
                    "statistics": unmeasured,
                }
                for name in self.feature_names
            }
        out: dict[str, Any] = {
            "dataset_drift": self.dataset_drift,
            "features": features,
            "prediction_drift": self.prediction.to_json()
            if self.prediction is not None
            else {"drift": None, "test": "chi2", "statistic": None, "p_value": None},
            "window": self.window,
            "thresholds": {
                "p_value": self.thresholds.p_value,
                "psi": self.thresholds.psi,
                "min_effect": self.thresholds.min_effect,
                "min_rows": self.thresholds.min_rows,
                "share": self.thresholds.share,
                "statistics": {s.name: self.thresholds.threshold(s) for s in self.statistics},
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


def _missing(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    if values.dtype != object:
        return np.asarray(np.isnan(values), dtype=bool)
    return np.asarray([is_missing(v) for v in values], dtype=bool)


def feature_drift(
    name: str,
    spec: dict[str, Any],
    current: npt.NDArray[Any],
    thresholds: DriftThresholds,
    statistics: Sequence[DriftStatistic] | None = None,
) -> FeatureDrift:
    """Measure every statistic (default: the registered ones) on one feature and judge it:
    drift when every significance statistic has p < ``thresholds.p_value`` and at least one
    statistic reaches its threshold, or when the share of missing values (or of categories
    never seen in training) rises by ``thresholds.min_effect`` or more."""
    chosen = registered() if statistics is None else tuple(statistics)
    categorical = spec.get("kind") == "categorical"
    missing = _missing(current)
    current_missing = float(missing.mean()) if len(current) else 0.0
    present = current[~missing]
    values: Any  # the present values: strings of a category, else float64
    if categorical:
        chosen = tuple(s for s in chosen if s.categorical is not None)
        values = [str(v) for v in present]
    else:
        values = np.asarray(present, dtype=np.float64)
    measured: dict[str, Measured] = {}
    if len(values):
        for statistic in chosen:
            if categorical:
                assert statistic.categorical is not None
                result = statistic.categorical(spec, values)
            else:
                result = statistic.measure(spec, values)
            measured[statistic.name] = Measured(
                name=statistic.name,
                value=float(result.value),
                p_value=None if result.p_value is None else float(result.p_value),
                threshold=thresholds.threshold(statistic),
            )
    significant = bool(measured) and all(
        measured[s.name].significant(thresholds.p_value) for s in chosen if s.significance
    )
    drift = significant and any(m.reached for m in measured.values())
    reference_missing = float(spec.get("missing", 0.0))
    drift = drift or current_missing - reference_missing >= thresholds.min_effect
    test = next((s.name for s in chosen if s.significance), _COMPAT_TEST)
    for statistic in registered() if statistics is None else statistics:
        # Not measurable here (no categorical form, or no value present): shown as empty.
        if statistic.name not in measured:
            measured[statistic.name] = Measured(
                statistic.name, math.nan, None, thresholds.threshold(statistic)
            )
    if categorical:
        names, shares, counts = category_shares(spec, values)
        total = max(counts.sum(), 1.0)
        new_share = float(counts[-1] / total)
        drift = drift or new_share >= thresholds.min_effect
        return FeatureDrift(
            name=name,
            drift=bool(drift),
            statistics=measured,
            reference_mean=math.nan,
            current_mean=math.nan,
            test=test,
            kind="categorical",
            reference_missing=reference_missing,
            current_missing=current_missing,
            new_category_share=new_share,
            reference_shares={n: round(float(v), 4) for n, v in zip(names, shares, strict=True)},
            current_shares={
                n: round(float(c / total), 4) for n, c in zip(names, counts, strict=True)
            },
        )
    reference_mean = spec.get("mean")
    if reference_mean is None:
        reference_mean = np.asarray(spec["sample"], dtype=np.float64).mean()
    return FeatureDrift(
        name=name,
        drift=bool(drift),
        statistics=measured,
        reference_mean=float(reference_mean),
        current_mean=float(np.mean(values)) if len(values) else math.nan,
        test=test,
        kind=str(spec.get("kind", "numeric")),
        reference_missing=reference_missing,
        current_missing=current_missing,
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
    statistics: Sequence[DriftStatistic] | None = None,
) -> DriftReport:
    """Compare a :class:`~petalops.monitoring.store.Window` with a reference profile.

    ``thresholds`` is a :class:`DriftThresholds` or the ``monitor`` settings section;
    ``statistics`` default to the registered ones (:mod:`petalops.monitoring.statistics`).
    """
    if not isinstance(thresholds, DriftThresholds):
        thresholds = DriftThresholds.from_settings(thresholds)
    chosen = registered() if statistics is None else tuple(statistics)
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
            dataset_drift=None,
            sufficient=False,
            features={},
            prediction=None,
            window=info,
            thresholds=thresholds,
            reason=f"window too small to judge: {rows} rows, need at least "
            f"{thresholds.min_rows} (monitor.drift_min_rows); wait for more traffic or widen it",
            feature_names=names,
            statistics=chosen,
        )
    if window.features.shape[1] != len(names):
        raise DataError(
            f"logged rows have {window.features.shape[1]} features but the reference profile "
            f"has {len(names)} ({', '.join(names)}); pick the matching --version"
        )
    features = {
        name: feature_drift(
            name, profile["features"][name], window.features[:, j], thresholds, chosen
        )
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
        statistics=chosen,
    )
