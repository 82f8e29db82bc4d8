"""Blue-green smoke test: load the new version exactly as a server would and try it.

Loading goes through `petalops.registry.load_runtime`, so the bundle's checksums are
verified; the inputs are rows from the champion's reference profile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from petalops.config import Settings
from petalops.errors import PetalopsError
from petalops.rollout.analysis import Thresholds, percentile


@dataclass(frozen=True)
class SmokeResult:
    passed: bool
    reasons: tuple[str, ...]
    numbers: dict[str, Any] = field(default_factory=dict)


def _profile_rows(profile: dict[str, Any], features: list[str], limit: int) -> np.ndarray:
    columns = []
    for name in features:
        info = profile.get("features", {}).get(name, {})
        sample = info.get("sample") or [info.get("mean", 0.0)]
        columns.append([float(v) for v in sample])
    n = min(limit, min(len(c) for c in columns))
    return np.asarray([[c[i] for c in columns] for i in range(n)], dtype=np.float64)


def smoke_test(
    settings: Settings, version: str, baseline: str, thresholds: Thresholds, rows: int = 200
) -> SmokeResult:
    """Load ``version``, predict on profile rows, compare with ``baseline``."""
    from petalops.registry import load_profile, load_runtime

    name = settings.project
    try:
        candidate = load_runtime(settings, f"{name}/{version}")
        champion = load_runtime(settings, f"{name}/{baseline}")
        profile = load_profile(settings, f"{name}/{baseline}")
    except PetalopsError as exc:
        return SmokeResult(False, (f"load failed: {exc.message}",))
    reasons: list[str] = []
    if list(candidate.features) != list(champion.features):
        reasons.append(f"features differ: {candidate.features} vs {champion.features}")
    if list(candidate.classes) != list(champion.classes):
        reasons.append(f"classes differ: {candidate.classes} vs {champion.classes}")
    if reasons:
        return SmokeResult(False, tuple(reasons))
    x = _profile_rows(profile, list(champion.features), rows)
    try:
        proba = np.asarray(candidate.predict_proba(x), dtype=np.float64)
        ours = np.asarray(candidate.predict(x))
        theirs = np.asarray(champion.predict(x))
        latencies = []
        for row in x[:100]:
            start = time.perf_counter()
            candidate.predict_one([float(v) for v in row])
            latencies.append((time.perf_counter() - start) * 1000)
    except Exception as exc:  # any failure to answer is the verdict itself
        return SmokeResult(False, (f"prediction failed: {type(exc).__name__}: {exc}",))
    finite = bool(np.isfinite(proba).all())
    sums_ok = bool(np.allclose(proba.sum(axis=1), 1.0, atol=1e-3)) if finite else False
    disagreement = float((ours != theirs).mean()) if len(x) else 0.0
    p99 = percentile(sorted(latencies), 99) or 0.0
    numbers = {
        "rows": len(x),
        "disagreement": round(disagreement, 4),
        "p99_ms": round(p99, 4),
        "probabilities_ok": finite and sums_ok,
    }
    if not (finite and sums_ok):
        reasons.append("probabilities are not finite or do not sum to 1")
    if thresholds.max_disagreement is not None and disagreement > thresholds.max_disagreement:
        reasons.append(
            f"disagreement {disagreement:.4g} > {thresholds.max_disagreement:.4g} on {len(x)} "
            "profile rows"
        )
    if thresholds.max_p99_ms is not None and p99 > thresholds.max_p99_ms:
        reasons.append(f"p99_ms {p99:.4g} ms > {thresholds.max_p99_ms:.4g} ms in-process")
    return SmokeResult(not reasons, tuple(reasons) or ("smoke test passed",), numbers)
