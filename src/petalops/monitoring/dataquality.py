"""Data-quality checks of a window of served rows against the training baseline (the version's
reference profile).

Per feature: the share of missing values (``None``/NaN), of values outside the training
range widened by ``range_tolerance`` of its width, of categories never seen in training (a
feature whose profile lists ``categories``), of values of the wrong type (a string in a
numeric column), and whether the column is constant or near-constant in the window when it
was not in training. For the window: the share of answers refused at the edge (4xx: wrong
type, missing value, wrong width), which never reach the prediction log as rows.

Each check has a threshold (``monitor.quality_*``); a check over its threshold is a
failure. A window of fewer than ``min_rows`` rows is not judged: its verdicts are ``None``
with the reason. Written by hand: these are a few counts per column, and the libraries that
do them (Great Expectations, Evidently, pandera) are frameworks with their own suite and
report formats for a job that takes one pass over the window here.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from petalops.errors import DataError

CHECKS = ("missing", "out_of_range", "unseen", "wrong_type", "constant")


@dataclass(frozen=True)
class QualityThresholds:
    """Failure thresholds (shares of the window's rows) and the range tolerance."""

    max_missing: float = 0.05
    max_out_of_range: float = 0.05
    range_tolerance: float = 0.1
    max_unseen: float = 0.01
    max_refused: float = 0.01
    constant_share: float = 0.98
    min_rows: int = 50

    @classmethod
    def from_settings(cls, monitor: Any) -> QualityThresholds:
        return cls(
            max_missing=monitor.quality_max_missing,
            max_out_of_range=monitor.quality_max_out_of_range,
            range_tolerance=monitor.quality_range_tolerance,
            max_unseen=monitor.quality_max_unseen,
            max_refused=monitor.quality_max_refused,
            constant_share=monitor.quality_constant_share,
            min_rows=monitor.drift_min_rows,
        )

    def limit(self, check: str) -> float:
        """The largest share of rows ``check`` may find before it fails."""
        return {
            "missing": self.max_missing,
            "out_of_range": self.max_out_of_range,
            "unseen": self.max_unseen,
            "wrong_type": 0.0,
            "constant": self.constant_share,
        }[check]


@dataclass(frozen=True)
class FeatureQuality:
    """One feature of the window: counts per check, and the checks that failed."""

    name: str
    kind: str  # numeric or categorical
    rows: int
    counts: dict[str, int]
    top_share: float  # the share of the window taken by its most common value
    failed: list[str]

    def share(self, check: str) -> float:
        if check == "constant":
            return self.top_share
        return self.counts.get(check, 0) / self.rows if self.rows else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "counts": dict(self.counts),
            "shares": {
                c: round(self.share(c), 4) for c in CHECKS if c in self.counts or c == "constant"
            },
            "top_share": round(self.top_share, 4),
            "failed": list(self.failed),
        }


@dataclass
class DataQualityReport:
    """Every check of one window; ``passed`` is ``None`` when the window was too small."""

    rows: int
    refused: int
    features: dict[str, FeatureQuality]
    thresholds: QualityThresholds
    passed: bool | None
    reason: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def refused_share(self) -> float:
        total = self.rows + self.refused
        return self.refused / total if total else 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "refused": self.refused,
            "refused_share": round(self.refused_share, 4),
            "passed": self.passed,
            "failures": list(self.failures),
            "features": {name: f.to_json() for name, f in self.features.items()},
            "thresholds": {
                "max_missing": self.thresholds.max_missing,
                "max_out_of_range": self.thresholds.max_out_of_range,
                "range_tolerance": self.thresholds.range_tolerance,
                "max_unseen": self.thresholds.max_unseen,
                "max_refused": self.thresholds.max_refused,
                "constant_share": self.thresholds.constant_share,
                "min_rows": self.thresholds.min_rows,
            },
        }
        if self.reason:
            out["reason"] = self.reason
        return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _categories(spec: dict[str, Any]) -> set[str] | None:
    """The training categories of a categorical feature's profile entry, else ``None``."""
    found = spec.get("categories")
    if found is None:
        return None
    return {str(c) for c in found}


def feature_quality(
    name: str, spec: dict[str, Any], values: list[Any], thresholds: QualityThresholds
) -> FeatureQuality:
    """The checks of one feature's window values against its profile entry."""
    categories = _categories(spec)
    present = [v for v in values if not _missing(v)]
    counts: dict[str, int] = {"missing": len(values) - len(present)}
    if categories is not None:
        kind = "categorical"
        counts["unseen"] = sum(1 for v in present if str(v) not in categories)
        was_constant = len(categories) <= 1
    else:
        kind = "numeric"
        numbers = [float(v) for v in present if _is_number(v)]
        counts["wrong_type"] = len(present) - len(numbers)
        low, high = float(spec["min"]), float(spec["max"])
        slack = (high - low) * thresholds.range_tolerance
        counts["out_of_range"] = sum(1 for v in numbers if v < low - slack or v > high + slack)
        was_constant = high <= low
    top = Counter(str(v) for v in values).most_common(1)
    top_share = top[0][1] / len(values) if top and values else 0.0
    return judged(name, kind, len(values), counts, top_share, was_constant, thresholds)


def judged(
    name: str,
    kind: str,
    rows: int,
    counts: dict[str, int],
    top_share: float,
    was_constant: bool,
    thresholds: QualityThresholds,
) -> FeatureQuality:
    """One feature's counts over ``rows`` values against the thresholds (shared by the
    window checks here and the scored-batch profile, `petalops.monitoring.batchprofile`)."""
    feature = FeatureQuality(name, kind, rows, counts, top_share, [])
    for check in counts:
        if feature.share(check) > thresholds.limit(check):
            feature.failed.append(check)
    if rows and not was_constant and top_share >= thresholds.constant_share:
        feature.failed.append("constant")
    return feature


def too_small(rows: int, refused: int, thresholds: QualityThresholds) -> DataQualityReport:
    """The report of a window of fewer than ``thresholds.min_rows`` rows: not judged."""
    return DataQualityReport(
        rows=rows,
        refused=refused,
        features={},
        thresholds=thresholds,
        passed=None,
        reason=f"window too small to judge data quality: {rows} rows, need at least "
        f"{thresholds.min_rows} (monitor.drift_min_rows); wait for more traffic or widen it",
    )


def data_quality(
    rows: list[list[Any]],
    profile: dict[str, Any],
    thresholds: QualityThresholds | Any,
    *,
    refused: int = 0,
) -> DataQualityReport:
    """Check a window of served rows (values in the profile's feature order) against the
    training baseline. ``thresholds`` is a :class:`QualityThresholds` or the ``monitor``
    settings section; ``refused`` counts the window's answers refused at the edge."""
    if not isinstance(thresholds, QualityThresholds):
        thresholds = QualityThresholds.from_settings(thresholds)
    names = list(profile["features"])
    n = len(rows)
    if n < thresholds.min_rows:
        return too_small(n, refused, thresholds)
    widths = {len(r) for r in rows}
    if widths != {len(names)}:
        raise DataError(
            f"logged rows have {sorted(widths)} values but the reference profile has "
            f"{len(names)} features ({', '.join(names)}); check each version against its own "
            "profile"
        )
    features = {
        name: feature_quality(name, profile["features"][name], [r[j] for r in rows], thresholds)
        for j, name in enumerate(names)
    }
    return verdict(n, refused, features, thresholds)


def verdict(
    rows: int,
    refused: int,
    features: dict[str, FeatureQuality],
    thresholds: QualityThresholds,
) -> DataQualityReport:
    """The report of judged features: every failed check, and the refused share."""
    report = DataQualityReport(
        rows=rows, refused=refused, features=features, thresholds=thresholds, passed=True
    )
    for name, feature in features.items():
        for check in feature.failed:
            report.failures.append(
                f"{name}: {check} {feature.share(check):.1%} (limit {thresholds.limit(check):.1%})"
            )
    if report.refused_share > thresholds.max_refused:
        report.failures.append(
            f"refused at the edge: {report.refused_share:.1%} of answers "
            f"(limit {thresholds.max_refused:.1%})"
        )
    report.passed = not report.failures
    return report
