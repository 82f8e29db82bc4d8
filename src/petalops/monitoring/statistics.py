"""Drift statistics by registry: a statistic is one function plus its threshold.

Each registered :class:`DriftStatistic` is measured on every feature of every drift report
(`petalops monitor drift`, its ``--json`` and ``--html``, the ``petalops_drift_score``
gauge, ``monitor watch``), in registration order. Two ship: the two-sample
Kolmogorov-Smirnov test (``ks``) and the population stability index (``psi``).

How a feature's verdict follows from its statistics
(:func:`petalops.monitoring.drift.feature_drift`): it drifts when every *significance*
statistic says the shift is real (p-value below ``monitor.drift_p_value``) and at least
one statistic's value reaches its threshold. With the two shipped statistics that is
"KS p < drift_p_value and (KS >= drift_min_effect or PSI >= drift_psi)".

Adding a statistic is one function and one :func:`register` call, in any module imported
before the report is made::

    def wasserstein(spec, current):
        return Measurement(float(scipy.stats.wasserstein_distance(spec["sample"], current)))

    register(DriftStatistic("wasserstein", wasserstein, threshold=0.5, label="W1",
                            title="Wasserstein distance", description="W1 against the sample"))

A categorical feature (profile ``kind: categorical``) is measured on its category
frequencies instead: a statistic's ``categorical`` function gets the profile's category shares
and the live values. Shipped: ``ks`` becomes the chi-square test of the live category counts
against the training shares (value: the total variation distance, the share of rows that
would have to change category; categories never seen in training form one extra bucket), and
``psi`` the PSI over the categories. A statistic without a ``categorical`` function is not
measured on categorical features.

``spec`` is the feature's entry of the reference profile (``sample``: up to 5,000 training
values, ``histogram`` ``{edges, counts}``, ``quantiles``, ``mean``, ``std``, ``min``,
``max``; see ``petalops.pipeline.profile``), ``current`` the live window's column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from petalops.errors import DataError

PSI_EPSILON = 1e-4


@dataclass(frozen=True)
class Measurement:
    """What a statistic measured on one feature: its value and, for a test, its p-value."""

    value: float
    p_value: float | None = None


Measure = Callable[[Mapping[str, Any], npt.NDArray[np.float64]], Measurement]
CategoricalMeasure = Callable[[Mapping[str, Any], Sequence[str]], Measurement]
NEW_CATEGORY = "(new)"


@dataclass(frozen=True)
class DriftStatistic:
    """A drift statistic: how to measure it, and the value from which a feature counts as
    shifted by it."""

    name: str  # the key in --json, the gauge's test label (its p-value: <name>_p)
    measure: Measure
    threshold: float  # the default; ``setting`` overrides it
    label: str  # the column of `monitor drift`
    title: str  # the column of the HTML report and its wording of the rule
    description: str  # how it compares, in the title of `monitor drift`'s table
    # A DriftThresholds field (set from monitor.drift_*) holding the threshold, if any.
    setting: str | None = None
    # The measure returns a p-value, and a feature drifts only when it is significant.
    significance: bool = False
    # How it measures a categorical feature (category shares vs live values), if it can.
    categorical: CategoricalMeasure | None = None


_REGISTRY: dict[str, DriftStatistic] = {}


def register(statistic: DriftStatistic, *, replace: bool = False) -> DriftStatistic:
    """Add ``statistic`` to every drift report from now on; returns it.

    A second statistic of the same name is refused (ValueError) unless ``replace``."""
    if statistic.name in _REGISTRY and not replace:
        raise ValueError(
            f"a drift statistic named {statistic.name!r} is already registered; "
            "pick another name or pass replace=True"
        )
    _REGISTRY[statistic.name] = statistic
    return statistic


def unregister(name: str) -> DriftStatistic:
    """Remove a statistic from the reports; returns it (KeyError naming the known ones)."""
    try:
        return _REGISTRY.pop(name)
    except KeyError:
        raise KeyError(
            f"no drift statistic named {name!r}; registered: {', '.join(_REGISTRY)}"
        ) from None


def registered() -> tuple[DriftStatistic, ...]:
    """The statistics every report measures now, in registration order."""
    return tuple(_REGISTRY.values())


@dataclass(frozen=True)
class Column:
    """One statistic column of a drift table: its heading and where its value is in a
    feature's ``--json`` (``statistics[<statistic>][<key>]``)."""

    heading: str
    statistic: str
    key: str  # "value" or "p_value"


def columns(statistics: Sequence[DriftStatistic], *, long: bool = False) -> list[Column]:
    """The statistic columns of a drift table: each statistic (its ``title`` if ``long``,
    else its ``label``), and after a significance statistic its p-value ("p-value", or
    "<label> p-value" when there are several)."""
    tests = sum(1 for s in statistics if s.significance)
    out: list[Column] = []
    for statistic in statistics:
        out.append(Column(statistic.title if long else statistic.label, statistic.name, "value"))
        if statistic.significance:
            heading = "p-value" if tests == 1 else f"{statistic.label} p-value"
            out.append(Column(heading, statistic.name, "p_value"))
    return out


# -- the two shipped statistics ------------------------------------------------------------


def kolmogorov_smirnov(spec: Mapping[str, Any], current: npt.NDArray[np.float64]) -> Measurement:
    """``scipy.stats.ks_2samp`` of the live column against the profile's raw sample."""
    result = stats.ks_2samp(np.asarray(spec["sample"], dtype=np.float64), current)
    return Measurement(float(result.statistic), float(result.pvalue))


def reference_bins(
    spec: Mapping[str, Any],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
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


def psi(spec: Mapping[str, Any], current: npt.NDArray[np.float64]) -> Measurement:
    """The PSI of the live column over the profile's histogram bins (quantile bins when no
    histogram is stored)."""
    inner, shares = reference_bins(spec)
    return Measurement(population_stability_index(inner, shares, current))


def category_shares(
    spec: Mapping[str, Any], current: Sequence[str]
) -> tuple[list[str], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The categories (training's, then one bucket for categories never seen), their
    reference shares among present values, and the live counts."""
    reference = {str(k): float(v) for k, v in (spec.get("categories") or {}).items()}
    names = [*reference, NEW_CATEGORY]
    index = {name: i for i, name in enumerate(names)}
    counts = np.zeros(len(names))
    for value in current:
        counts[index.get(str(value), len(names) - 1)] += 1
    shares = np.asarray([*reference.values(), 0.0], dtype=np.float64)
    shares = shares / shares.sum() if shares.sum() else np.full(len(names), 1.0 / len(names))
    return names, shares, counts


def chi_square_categories(spec: Mapping[str, Any], current: Sequence[str]) -> Measurement:
    """``scipy.stats.chisquare`` of the live category counts against the training shares;
    the value is the total variation distance between the two distributions."""
    _, shares, counts = category_shares(spec, current)
    n = counts.sum()
    if n == 0:
        return Measurement(0.0, 1.0)
    expected = np.clip(shares, PSI_EPSILON, None)
    expected = expected / expected.sum() * n
    result = stats.chisquare(counts, expected)
    distance = float(0.5 * np.abs(counts / n - shares).sum())
    return Measurement(distance, float(result.pvalue))


def psi_categories(spec: Mapping[str, Any], current: Sequence[str]) -> Measurement:
    """The PSI over the categories (never-seen ones as one more bucket)."""
    _, shares, counts = category_shares(spec, current)
    current_shares = counts / max(counts.sum(), 1.0)
    r = np.clip(shares, PSI_EPSILON, None)
    c = np.clip(current_shares, PSI_EPSILON, None)
    return Measurement(float(np.sum((c - r) * np.log(c / r))))


KS = register(
    DriftStatistic(
        name="ks",
        measure=kolmogorov_smirnov,
        threshold=0.1,
        label="KS",
        title="KS statistic",
        description="KS against the training sample",
        setting="min_effect",
        significance=True,
        categorical=chi_square_categories,
    )
)
PSI = register(
    DriftStatistic(
        name="psi",
        measure=psi,
        threshold=0.2,
        label="PSI",
        title="PSI",
        description="PSI over its bins",
        setting="psi",
        categorical=psi_categories,
    )
)
