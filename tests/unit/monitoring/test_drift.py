"""Drift statistics checked against scipy on fixed data: no drift, drift, small windows."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from petalops.monitoring.drift import DriftThresholds, drift_report, prediction_drift
from petalops.monitoring.statistics import (
    KS,
    PSI,
    DriftStatistic,
    Measurement,
    population_stability_index,
)
from petalops.monitoring.store import Window
from petalops.pipeline.profile import build_profile

FEATURES = ["a", "b"]
CLASSES = ["x", "y", "z"]


def reference(seed: int = 0, rows: int = 2000) -> tuple[np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.normal(5.0, 1.0, rows), rng.uniform(0.0, 10.0, rows)])
    y = rng.integers(0, 3, rows).astype(np.int64)
    return x, build_profile(x, y, FEATURES, CLASSES, predicted=y)


def window(x: np.ndarray, predicted: np.ndarray | None = None) -> Window:
    if predicted is None:
        predicted = np.arange(len(x), dtype=np.int64) % 3
    return Window(
        features=x,
        predictions=predicted,
        ts=np.linspace(1.7e9, 1.7e9 + len(x), len(x)),
        versions={"1": len(x)},
    )


def test_ks_and_psi_match_scipy_and_the_formula_on_fixed_data() -> None:
    _, profile = reference()
    rng = np.random.default_rng(1)
    current = np.column_stack([rng.normal(6.0, 1.0, 400), rng.uniform(0.0, 10.0, 400)])
    report = drift_report(window(current), profile, DriftThresholds())

    for j, name in enumerate(FEATURES):
        sample = np.asarray(profile["features"][name]["sample"])
        expected = stats.ks_2samp(sample, current[:, j])
        got = report.features[name]
        assert got.statistic == pytest.approx(expected.statistic, abs=1e-12)
        assert got.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)

        # PSI by hand: reference shares from the stored histogram, current counts in the same
        # bins with the outer bins open-ended.
        hist = profile["features"][name]["histogram"]
        edges = np.asarray(hist["edges"], dtype=float)
        ref = np.asarray(hist["counts"], dtype=float) / sum(hist["counts"])
        cur_counts = np.histogram(np.clip(current[:, j], edges[0], edges[-1]), bins=edges)[0]
        cur = cur_counts / cur_counts.sum()
        ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
        assert got.psi == pytest.approx(float(np.sum((cur - ref) * np.log(cur / ref))), rel=1e-9)

    assert report.features["a"].drift is True  # mean moved by one standard deviation
    assert report.features["b"].drift is False
    assert report.dataset_drift is True  # 1 of 2 features = share 0.5
    assert report.window["rows"] == 400
    assert report.window["sufficient"] is True


def test_same_distribution_is_not_drift() -> None:
    _, profile = reference()
    rng = np.random.default_rng(7)
    current = np.column_stack([rng.normal(5.0, 1.0, 1000), rng.uniform(0.0, 10.0, 1000)])
    report = drift_report(window(current), profile, DriftThresholds())
    assert report.sufficient
    assert report.drifted == []
    assert report.dataset_drift is False
    for feature in report.features.values():
        assert feature.p_value > 0.01
        assert feature.psi < 0.2


def test_tiny_noise_on_a_huge_window_is_significant_but_not_drift() -> None:
    x, profile = reference(rows=5000)
    current = np.tile(x, (8, 1))[:40000].copy()
    current[:, 0] += 0.08  # 8 % of a standard deviation: real, but too small to matter
    report = drift_report(window(current), profile, DriftThresholds())
    feature = report.features["a"]
    assert feature.p_value < 0.01  # a p-value alone would call it drift...
    assert feature.statistic < 0.1  # ...the effect size says it is negligible
    assert feature.psi < 0.2
    assert feature.drift is False
    assert report.dataset_drift is False


def test_a_window_too_small_says_so_instead_of_guessing() -> None:
    _, profile = reference()
    current = np.full((12, 2), 100.0)  # wildly shifted, but only 12 rows
    report = drift_report(window(current), profile, DriftThresholds(min_rows=50))
    assert report.sufficient is False
    assert report.dataset_drift is None  # not judged: null, never false
    assert "12 rows" in report.reason
    assert "50" in report.reason
    data = report.to_json()
    statistics = data["features"]["a"].pop("statistics")
    assert data["dataset_drift"] is None
    assert data["prediction_drift"]["drift"] is None
    assert data["features"]["a"] == {
        "drift": None,
        "test": "ks",
        "statistic": None,
        "p_value": None,
        "psi": None,
    }
    assert statistics == {
        "ks": {"value": None, "p_value": None, "threshold": 0.1, "reached": None},
        "psi": {"value": None, "p_value": None, "threshold": 0.2, "reached": None},
    }
    assert data["window"]["sufficient"] is False


def test_small_but_sufficient_window_with_a_large_shift_is_drift() -> None:
    _, profile = reference()
    rng = np.random.default_rng(3)
    current = np.column_stack([rng.normal(8.0, 1.0, 60), rng.uniform(20.0, 30.0, 60)])
    report = drift_report(window(current), profile, DriftThresholds(min_rows=50))
    assert report.drifted == ["a", "b"]
    assert report.dataset_drift is True


def test_json_shape_of_the_issue() -> None:
    _, profile = reference()
    rng = np.random.default_rng(5)
    current = np.column_stack([rng.normal(5.0, 1.0, 100), rng.uniform(0.0, 10.0, 100)])
    data = drift_report(window(current), profile, DriftThresholds(), reference="m/1").to_json()
    assert set(data) >= {"dataset_drift", "features", "prediction_drift", "window"}
    assert isinstance(data["dataset_drift"], bool)
    for feature in data["features"].values():
        assert set(feature) >= {"drift", "test", "statistic", "p_value"}
        assert feature["test"] == "ks"
    assert data["prediction_drift"]["test"] == "chi2"
    assert data["window"]["reference"] == "m/1"


def test_prediction_drift_is_scipy_chisquare_against_the_reference_balance() -> None:
    _, profile = reference()
    profile["prediction_balance"] = {"x": 0.5, "y": 0.3, "z": 0.2}
    predicted = np.asarray([0] * 20 + [1] * 30 + [2] * 50, dtype=np.int64)
    result = prediction_drift(profile, predicted, DriftThresholds())
    expected = stats.chisquare([20, 30, 50], [50.0, 30.0, 20.0])
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.distance == pytest.approx(0.3)
    assert result.drift is True

    balanced = np.asarray([0] * 50 + [1] * 30 + [2] * 20, dtype=np.int64)
    assert prediction_drift(profile, balanced, DriftThresholds()).drift is False


def test_dataset_verdict_follows_the_configured_share() -> None:
    _, profile = reference()
    rng = np.random.default_rng(9)
    current = np.column_stack([rng.normal(7.0, 1.0, 300), rng.uniform(0.0, 10.0, 300)])
    assert drift_report(window(current), profile, DriftThresholds(share=0.5)).dataset_drift
    assert not drift_report(window(current), profile, DriftThresholds(share=0.75)).dataset_drift


def test_psi_falls_back_to_quantile_bins() -> None:
    x, profile = reference()
    spec = dict(profile["features"]["a"])
    del spec["histogram"]
    inner = np.asarray([spec["quantiles"][k] for k in sorted(spec["quantiles"], key=float)])[1:-1]
    shares = np.diff(sorted(float(q) for q in spec["quantiles"]))
    # The training data itself is (almost) exactly distributed as its own quantiles.
    assert population_stability_index(inner, shares, x[:, 0]) < 0.01
    profile["features"]["a"] = spec
    report = drift_report(window(x[:500] + np.array([3.0, 0.0])), profile, DriftThresholds())
    assert report.features["a"].psi > 1.0


def test_the_verdict_needs_every_test_significant_and_one_statistic_at_its_threshold() -> None:
    # The tiny shift on a huge window above: KS significant but small, PSI small.
    x, profile = reference(rows=5000)
    current = np.tile(x, (8, 1))[:40000].copy()
    current[:, 0] += 0.08

    def mean_shift(spec: dict, column: np.ndarray) -> Measurement:
        return Measurement(abs(float(column.mean()) - float(spec["mean"])))

    shift = DriftStatistic("mean_shift", mean_shift, 0.05, "Δ", "mean shift", "|Δ mean|")
    report = drift_report(window(current), profile, DriftThresholds(), statistics=[KS, PSI, shift])
    feature = report.features["a"]
    assert feature.statistics["mean_shift"].value == pytest.approx(0.08, abs=1e-9)
    assert feature.statistics["mean_shift"].reached
    assert feature.drift is True  # KS says real, the mean shift says large enough
    assert report.features["b"].drift is False  # untouched: KS not significant

    # Without a significance test the effect alone decides.
    alone = drift_report(window(current), profile, DriftThresholds(), statistics=[shift])
    assert alone.features["a"].drift is True
    assert alone.features["a"].p_value is None
    assert alone.to_json()["features"]["a"]["statistic"] is None  # no KS to show

    # A significance test that does not pass vetoes every effect.
    strict = drift_report(
        window(current), profile, DriftThresholds(p_value=1e-300), statistics=[KS, shift]
    )
    assert strict.features["a"].drift is False


def test_the_compatibility_fields_are_the_named_statistics() -> None:
    _, profile = reference()
    rng = np.random.default_rng(1)
    current = np.column_stack([rng.normal(6.0, 1.0, 400), rng.uniform(0.0, 10.0, 400)])
    data = drift_report(window(current), profile, DriftThresholds()).to_json()
    for feature in data["features"].values():
        named = feature["statistics"]
        assert list(named) == ["ks", "psi"]
        assert feature["statistic"] == named["ks"]["value"]
        assert feature["p_value"] == named["ks"]["p_value"]
        assert feature["psi"] == named["psi"]["value"]
        assert named["ks"]["threshold"] == 0.1
        assert named["psi"]["threshold"] == 0.2
        assert named["ks"]["reached"] == (named["ks"]["value"] >= 0.1)
    assert data["thresholds"]["statistics"] == {"ks": 0.1, "psi": 0.2}


def _mixed_profile() -> tuple[np.ndarray, dict[str, object]]:
    from petalops.data.schema import ColumnSchema, Schema

    rng = np.random.default_rng(3)
    n = 600
    island = rng.choice(["Biscoe", "Dream", "Torgersen"], n, p=[0.5, 0.35, 0.15])
    length = rng.normal(44, 5, n)
    x = np.empty((n, 2), dtype=object)
    x[:, 0] = island
    x[:, 1] = length
    schema = Schema((ColumnSchema("island", "categorical"), ColumnSchema("length", "numeric")))
    y = np.zeros(n, dtype=np.int64)
    profile = build_profile(x, y, ["island", "length"], ["a"], predicted=y, schema=schema)
    return x, profile


def _window_of(x: np.ndarray) -> Window:
    n = len(x)
    return Window(
        features=x,
        predictions=np.zeros(n, dtype=np.int64),
        ts=np.arange(n, dtype=np.float64),
        versions={"1": n},
    )


def test_categorical_features_drift_on_their_frequencies() -> None:
    x, profile = _mixed_profile()
    assert profile["features"]["island"]["kind"] == "categorical"  # type: ignore[index]
    same = drift_report(_window_of(x[:300]), profile, DriftThresholds())
    assert not same.features["island"].drift
    shifted = x[:300].copy()
    shifted[:, 0] = np.random.default_rng(4).choice(["Biscoe", "Torgersen"], 300, p=[0.2, 0.8])
    moved = drift_report(_window_of(shifted), profile, DriftThresholds())
    island = moved.features["island"]
    assert island.drift and island.statistics["ks"].p_value is not None
    assert island.statistics["ks"].p_value < 0.01
    assert island.statistics["psi"].value >= 0.2
    assert not moved.features["length"].drift
    as_json = island.to_json()
    assert as_json["kind"] == "categorical"
    assert set(as_json["categories"]["current"]) == {"Biscoe", "Dream", "Torgersen", "(new)"}


def test_new_categories_and_missing_values_are_drift_by_themselves() -> None:
    x, profile = _mixed_profile()
    window = x[:300].copy()
    window[:40, 0] = "Atlantis"  # 13% never seen in training
    window[100:140, 1] = np.nan  # 13% missing, none in training
    report = drift_report(_window_of(window), profile, DriftThresholds())
    island, length = report.features["island"], report.features["length"]
    assert island.new_category_share == pytest.approx(40 / 300)
    assert island.drift
    assert length.current_missing == pytest.approx(40 / 300) and length.reference_missing == 0.0
    assert length.drift
    assert np.isfinite(length.statistics["ks"].value)  # measured on the present values


def test_the_html_report_draws_bar_charts_for_categories_and_missing_values() -> None:
    from petalops.monitoring.report import render_html

    x, profile = _mixed_profile()
    window = x[:300].copy()
    window[100:140, 1] = np.nan
    report = drift_report(_window_of(window), profile, DriftThresholds())
    page = render_html(report, profile, window)
    assert "alt='island categories'" in page
    assert "alt='length histogram'" in page and "alt='length missing'" in page
