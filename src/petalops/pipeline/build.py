"""Build the scikit-learn Pipeline named by the model settings."""

from __future__ import annotations

import importlib
from typing import Any

from sklearn.base import ClassifierMixin, is_classifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from petalops.config import ModelSettings
from petalops.errors import ConfigError


def import_estimator(class_path: str) -> type[Any]:
    module_name, _, name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, name)
    except (ImportError, AttributeError):
        raise ConfigError(
            f"model.class={class_path!r} cannot be imported; "
            "example: model.class=sklearn.linear_model.LogisticRegression"
        ) from None
    if not isinstance(cls, type):
        raise ConfigError(f"model.class={class_path!r} is not a class")
    return cls


def build_pipeline(model: ModelSettings, seed: int) -> Pipeline:
    """A Pipeline of an optional StandardScaler and the configured classifier."""
    cls = import_estimator(model.class_path)
    params = dict(model.params)
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise ConfigError(f"model.params {params} do not fit {model.class_path}: {exc}") from None
    if not is_classifier(estimator) or not isinstance(estimator, ClassifierMixin):
        raise ConfigError(
            f"model.class={model.class_path!r} is not a scikit-learn classifier; "
            "example: sklearn.ensemble.RandomForestClassifier"
        )
    if "random_state" in estimator.get_params() and "random_state" not in params:
        estimator.set_params(random_state=seed)
    steps: list[tuple[str, Any]] = []
    if model.scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("clf", estimator))
    return Pipeline(steps)
