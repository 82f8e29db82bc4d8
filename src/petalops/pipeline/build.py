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


def make_estimator(class_path: str, params: dict[str, Any]) -> Any:
    """The classifier ``class_path`` names, with ``params``; a one-line ConfigError naming the
    class's valid parameters (``get_params()``) for one it does not take."""
    cls = import_estimator(class_path)
    name = cls.__name__
    try:
        defaults = cls().get_params(deep=False)
    except Exception:  # not a scikit-learn estimator, or one that needs arguments
        defaults = None
    if defaults is None or not is_classifier(cls()) or not issubclass(cls, ClassifierMixin):
        raise ConfigError(
            f"model.class={class_path!r} is not a scikit-learn classifier; "
            "example: sklearn.ensemble.RandomForestClassifier"
        )
    unknown = sorted(k for k in params if k not in defaults)
    if unknown:
        raise ConfigError(
            f"model.params.{unknown[0]} is not a parameter of {name}; its parameters are "
            f"{', '.join(sorted(defaults))} (set them with --set model.params.NAME=VALUE)"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.params {params} do not fit {name}: {exc}") from None


def build_pipeline(model: ModelSettings, seed: int) -> Pipeline:
    """A Pipeline of an optional StandardScaler and the configured classifier."""
    estimator = make_estimator(model.class_path, dict(model.params))
    params = model.params
    if "random_state" in estimator.get_params() and "random_state" not in params:
        estimator.set_params(random_state=seed)
    steps: list[tuple[str, Any]] = []
    if model.scale:
        steps.append(("scale", StandardScaler()))
    steps.append(("clf", estimator))
    return Pipeline(steps)
