"""Iris-shaped data whose truth is known, and covariate-shifted windows of it.

Each class is a Gaussian with the mean and covariance of that Iris class, the covariance
widened by ``spread`` so that the classes overlap and a model makes mistakes. A shifted
window picks rows with a probability that depends on the features only (an exponential
tilt along a direction), so the class given the features is unchanged: the setting in which
confidence-based estimation is meant to hold. Used by tests/unit/monitoring/test_estimate.py
and bench/estimate_shift.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from petalops.config import DataSettings
from petalops.data.load import load_dataset


@dataclass(frozen=True)
class IrisLike:
    """The generative model: per-class means and covariances, and the class priors."""

    means: npt.NDArray[np.float64]
    covariances: npt.NDArray[np.float64]
    features: list[str]
    classes: list[str]

    @classmethod
    def from_iris(cls, spread: float = 6.0) -> IrisLike:
        data = load_dataset(DataSettings())
        k = len(data.classes)
        means = np.stack([data.x[data.y == c].mean(axis=0) for c in range(k)])
        covariances = np.stack([np.cov(data.x[data.y == c].T) * spread for c in range(k)])
        return cls(means, covariances, list(data.features), list(data.classes))

    def sample(
        self, n: int, rng: np.random.Generator
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """``n`` rows and their true classes, classes equally likely."""
        y = rng.integers(0, len(self.classes), n)
        x = np.empty((n, len(self.features)))
        for c in range(len(self.classes)):
            rows = y == c
            x[rows] = rng.multivariate_normal(self.means[c], self.covariances[c], int(rows.sum()))
        return x, np.asarray(y, dtype=np.int64)


def shifted_window(
    x: npt.NDArray[np.float64],
    size: int,
    direction: npt.NDArray[np.float64],
    strength: float,
    rng: np.random.Generator,
) -> npt.NDArray[np.intp]:
    """Indices of ``size`` rows of ``x`` drawn without replacement with weights
    ``exp(strength * z)``, ``z`` the standardised projection of a row on ``direction``."""
    projection = x @ direction
    z = (projection - projection.mean()) / projection.std()
    weights = np.exp(strength * z)
    return np.asarray(rng.choice(len(x), size, replace=False, p=weights / weights.sum()))


def windows(
    n_features: int, rng: np.random.Generator, count: int = 24
) -> list[tuple[npt.NDArray[np.float64], float]]:
    """``count`` (direction, strength) pairs: each feature axis and random directions,
    tilted from -2 to 2 standard deviations' worth."""
    out: list[tuple[npt.NDArray[np.float64], float]] = []
    strengths = np.linspace(-2.0, 2.0, 4)
    axes = [np.eye(n_features)[j] for j in range(n_features)]
    while len(out) < count:
        direction = axes.pop(0) if axes else rng.normal(size=n_features)
        for strength in strengths:
            out.append((direction / np.linalg.norm(direction), float(strength)))
    return out[:count]
