"""The drift-statistics registry and the two shipped statistics."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats

from petalops.errors import DataError
from petalops.monitoring.drift import DriftThresholds
from petalops.monitoring.statistics import (
    KS,
    PSI,
    DriftStatistic,
    Measurement,
    columns,
    kolmogorov_smirnov,
    psi,
    reference_bins,
    register,
    registered,
    unregister,
)


def _mean_shift(spec: Mapping[str, Any], current: npt.NDArray[np.float64]) -> Measurement:
    return Measurement(abs(float(current.mean()) - float(spec["mean"])))


SHIFT = DriftStatistic(
    name="mean_shift",
    measure=_mean_shift,
    threshold=0.5,
    label="Δmean",
    title="mean shift",
    description="|Δ mean|",
)


@pytest.fixture
def shift() -> Iterator[DriftStatistic]:
    register(SHIFT)
    yield SHIFT
    unregister(SHIFT.name)


def test_ks_and_psi_ship_in_that_order() -> None:
    assert registered()[:2] == (KS, PSI)
    assert (KS.setting, KS.significance, PSI.setting, PSI.significance) == (
        "min_effect",
        True,
        "psi",
        False,
    )


def test_a_registered_statistic_comes_after_the_shipped_ones_until_removed(
    shift: DriftStatistic,
) -> None:
    assert [s.name for s in registered()] == ["ks", "psi", "mean_shift"]
    with pytest.raises(ValueError, match="already registered"):
        register(SHIFT)
    register(SHIFT, replace=True)
    assert [s.name for s in registered()].count("mean_shift") == 1


def test_removing_an_unknown_statistic_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="registered: ks, psi"):
        unregister("wasserstein")


def test_thresholds_come_from_the_settings_or_the_statistic() -> None:
    thresholds = DriftThresholds(min_effect=0.05, psi=0.3)
    assert thresholds.threshold(KS) == 0.05
    assert thresholds.threshold(PSI) == 0.3
    assert thresholds.threshold(SHIFT) == 0.5


def test_ks_is_scipy_on_the_profile_sample() -> None:
    rng = np.random.default_rng(0)
    sample, current = rng.normal(0, 1, 500), rng.normal(0.3, 1, 300)
    measured = kolmogorov_smirnov({"sample": sample.tolist()}, current)
    expected = stats.ks_2samp(sample, current)
    assert (measured.value, measured.p_value) == (
        pytest.approx(expected.statistic),
        pytest.approx(expected.pvalue),
    )


def test_psi_uses_the_histogram_then_the_quantiles() -> None:
    spec = {"histogram": {"edges": [0.0, 1.0, 2.0, 3.0], "counts": [10, 20, 10]}}
    inner, shares = reference_bins(spec)
    assert inner.tolist() == [1.0, 2.0]
    assert shares.tolist() == [0.25, 0.5, 0.25]
    current = np.asarray([0.5] * 10 + [1.5] * 20 + [2.5] * 10)
    assert psi(spec, current).value == pytest.approx(0.0)
    assert psi(spec, current).p_value is None
    quantiles = {"quantiles": {"0.0": 0.0, "0.5": 1.0, "1.0": 2.0}}
    inner, shares = reference_bins(quantiles)
    assert (inner.tolist(), shares.tolist()) == ([1.0], [0.5, 0.5])
    with pytest.raises(DataError, match="neither a histogram nor quantiles"):
        reference_bins({"quantiles": {"0.5": 1.0}})


def test_table_columns_follow_the_statistics() -> None:
    assert [(c.heading, c.statistic, c.key) for c in columns([KS, PSI])] == [
        ("KS", "ks", "value"),
        ("p-value", "ks", "p_value"),
        ("PSI", "psi", "value"),
    ]
    assert [c.heading for c in columns([KS, PSI, SHIFT], long=True)] == [
        "KS statistic",
        "p-value",
        "PSI",
        "mean shift",
    ]
    second_test = DriftStatistic("t2", _mean_shift, 1.0, "T2", "T2", "t2", significance=True)
    assert [c.heading for c in columns([KS, second_test])] == [
        "KS",
        "KS p-value",
        "T2",
        "T2 p-value",
    ]
