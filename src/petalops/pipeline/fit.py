"""The fit step: the configured Pipeline fitted on the training split, and what it learned."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from petalops.config import Settings
from petalops.errors import PetalopsError
from petalops.pipeline.build import build_pipeline
from petalops.pipeline.split import Split


def fit(settings: Settings, split: Split, features: list[str] | None = None) -> Pipeline:
    """Build the Pipeline the model settings name and fit it on the training rows."""
    pipeline = build_pipeline(settings.model, settings.seed, split.schema)
    frame_train = split.frame(split.x_train)
    try:
        # Iris-sized fits lose to BLAS thread wake-ups: one thread is ~17x faster on a busy
        # 2-core box, and the fitted parameters are bit-identical.
        with threadpool_limits(limits=1):
            pipeline.fit(frame_train, split.y_train)
    except (ValueError, TypeError) as exc:
        raise PetalopsError(
            f"model.params {settings.model.params} rejected by {settings.model.class_path}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    return pipeline


def fitted_parameters(pipeline: Pipeline) -> dict[str, Any]:
    """Learned arrays of every step (coef_, intercept_, mean_, …) as nested lists."""
    fitted: dict[str, Any] = {}
    for step_name, step in pipeline.steps:
        for attr, value in vars(step).items():
            if attr.endswith("_") and not attr.startswith("_"):
                if isinstance(value, np.ndarray) and value.dtype.kind in "fiub":
                    fitted[f"{step_name}.{attr}"] = value.tolist()
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    fitted[f"{step_name}.{attr}"] = value
    return fitted
