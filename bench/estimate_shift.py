"""How close does the label-free estimate come to the realized accuracy on shifted traffic?

Iris-shaped classes with overlap (tests/utils/shifted.py: each class a Gaussian with the
mean and widened covariance of that Iris class), so the truth of every row is known. A
model is trained on unshifted rows and calibrated on a held-out set by petalops' own
calibrate step (``fit_calibration``); then covariate-shifted windows (rows picked by a tilt
along a feature axis or a random direction: the class given the features unchanged) are
estimated by ``monitoring.estimate`` and compared with their realized accuracy.

``--sharpen K`` raises the model's probabilities to the power K before anything sees them
(an overconfident model), to show what the calibration corrects: the "raw" columns are the
estimate without calibration.

Prints one line per window and a summary (mean absolute error, windows whose realized
accuracy is inside the band). Deterministic for a seed; never asserts.

    .venv/bin/python bench/estimate_shift.py [--seed 7] [--windows 24] [--rows 400]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# The generator lives with the tests that assert on it; one copy serves both.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.utils.shifted import IrisLike, shifted_window, windows

from petalops.monitoring.estimate import estimate
from petalops.pipeline.calibrate import fit_calibration


def sharpen(proba: np.ndarray, power: float) -> np.ndarray:
    raised = proba**power
    return raised / raised.sum(axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--windows", type=int, default=24)
    parser.add_argument("--rows", type=int, default=400, help="rows per window")
    parser.add_argument("--held-out", type=int, default=600, help="calibration rows")
    parser.add_argument("--spread", type=float, default=6.0, help="covariance widening")
    parser.add_argument("--sharpen", type=float, default=1.0, help="overconfidence power")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    world = IrisLike.from_iris(args.spread)
    x_train, y_train = world.sample(1500, rng)
    x_held, y_held = world.sample(args.held_out, rng)
    x_pool, y_pool = world.sample(20_000, rng)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(x_train, y_train)
    calibration = fit_calibration(
        sharpen(model.predict_proba(x_held), args.sharpen), y_held, world.classes, seed=args.seed
    )
    proba = sharpen(model.predict_proba(x_pool), args.sharpen)
    predicted = np.asarray(proba.argmax(axis=1), dtype=np.int64)
    print(
        f"calibration: {calibration['method']} on {calibration['rows']} held-out rows, "
        f"{args.windows} windows of {args.rows} rows, seed {args.seed}, sharpen {args.sharpen}"
    )
    print(f"{'window':>16} {'realized':>9} {'estimated':>9} {'band':>17} {'in':>3} {'raw':>7}")
    errors, raw_errors, inside, raw_inside = [], [], 0, 0
    for direction, strength in windows(len(world.features), rng, args.windows):
        rows = shifted_window(x_pool, args.rows, direction, strength, rng)
        result = estimate(
            proba[rows], predicted[rows], calibration, world.classes, labels=y_pool[rows]
        )
        raw = estimate(proba[rows], predicted[rows], None, world.classes)
        real = result.realized["accuracy"]
        band = result.accuracy
        assert band.value is not None and raw.accuracy.value is not None
        errors.append(abs(band.value - real))
        raw_errors.append(abs(raw.accuracy.value - real))
        inside += band.contains(real)
        raw_inside += raw.accuracy.contains(real)
        if np.count_nonzero(direction) == 1:
            name = world.features[int(np.argmax(np.abs(direction)))][:12]
        else:
            name = "random"
        label = f"{name}{strength:+.1f}"
        print(
            f"{label:>16} {real:9.3f} {band.value:9.3f} [{band.low:.3f}, {band.high:.3f}] "
            f"{'yes' if band.contains(real) else 'no':>3} {raw.accuracy.value:7.3f}"
        )
    n = len(errors)
    print(
        f"calibrated: mean |estimated - realized| {np.mean(errors):.4f}, max "
        f"{np.max(errors):.4f}, realized inside the band in {inside}/{n} windows"
    )
    print(
        f"raw probabilities: mean |estimated - realized| {np.mean(raw_errors):.4f}, "
        f"realized inside the band in {raw_inside}/{n} windows"
    )


if __name__ == "__main__":
    main()
