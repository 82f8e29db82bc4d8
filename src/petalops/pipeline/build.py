"""Build the scikit-learn Pipeline named by the model settings."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from sklearn.base import ClassifierMixin, is_classifier
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from petalops.config import ModelSettings
from petalops.data.schema import Schema
from petalops.errors import ConfigError

# The category a missing value becomes under model.preprocess.categorical_impute=constant.
MISSING_CATEGORY = "(missing)"


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


def _takes_any_keyword(cls: type[Any]) -> bool:
    # LightGBM and XGBoost pass **kwargs on to their booster: any name may be valid there.
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def make_estimator(class_path: str, params: dict[str, Any], calibrated: str = "off") -> Any:
    """The classifier ``class_path`` names, with ``params``; a one-line ConfigError naming the
    class's valid parameters (``get_params()``) for one it does not take. With ``calibrated``
    (``sigmoid``) it may lack ``predict_proba``: `build_pipeline` wraps it."""
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
    if unknown and not _takes_any_keyword(cls):
        raise ConfigError(
            f"model.params.{unknown[0]} is not a parameter of {name}; its parameters are "
            f"{', '.join(sorted(defaults))} (set them with --set model.params.NAME=VALUE)"
        )
    try:
        estimator = cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model.params {params} do not fit {name}: {exc}") from None
    if calibrated == "off" and not hasattr(estimator, "predict_proba"):
        # Serving, the gate and drift all need class probabilities.
        hint = (
            " (set model.params.probability=true, or model.calibrated=sigmoid)"
            if "probability" in defaults
            else "; set model.calibrated=sigmoid to wrap it in scikit-learn's "
            "CalibratedClassifierCV, or pick another class"
        )
        raise ConfigError(f"{name} with these parameters gives no class probabilities{hint}")
    if calibrated != "off" and not (
        hasattr(estimator, "decision_function") or hasattr(estimator, "predict_proba")
    ):
        raise ConfigError(
            f"model.calibrated={calibrated} needs a classifier with decision_function or "
            f"predict_proba; {name} has neither"
        )
    return estimator


def classifier(pipeline: Pipeline) -> Any:
    """The Pipeline's classifier itself: the estimator CalibratedClassifierCV wraps (under
    model.calibrated), else the last step."""
    clf = pipeline.steps[-1][1]
    if isinstance(clf, CalibratedClassifierCV):
        return clf.estimator
    return clf


def build_pipeline(model: ModelSettings, seed: int, schema: Schema | None = None) -> Pipeline:
    """The Pipeline the model settings name: preprocessing for the schema's columns (see
    `preprocessor`), an optional StandardScaler, and the configured classifier.

    Without a schema (or with numeric features only) the steps are an imputer for missing
    values, the optional scaler and the classifier, so the whole Pipeline takes one float
    matrix and linear models keep their numpy fast path."""
    estimator = make_estimator(model.class_path, dict(model.params), model.calibrated)
    params = model.params
    if "random_state" in estimator.get_params() and "random_state" not in params:
        estimator.set_params(random_state=seed)
    final: Any = estimator
    if model.calibrated != "off":
        # One classifier per fold, calibrated on the fold it did not see; their probabilities
        # are averaged (scikit-learn's ensemble=True). skl2onnx compiles the whole of it.
        final = CalibratedClassifierCV(estimator, method=model.calibrated, cv=5)
    steps: list[tuple[str, Any]] = []
    if schema is None or schema.numeric_only:
        if schema is None or any(c.allow_missing for c in schema.columns):
            steps.append(("impute", SimpleImputer(strategy=model.preprocess.numeric_impute)))
        if model.scale:
            steps.append(("scale", StandardScaler()))
    else:
        steps.append(("prep", preprocessor(model, schema, estimator)))
    steps.append(("clf", final))
    return Pipeline(steps)


def native_categorical(estimator: Any, params: dict[str, Any]) -> bool:
    """HistGradientBoosting splits on categories itself when model.params asks it to
    (``categorical_features``: any value; petalops points it at the encoded columns)."""
    return isinstance(estimator, HistGradientBoostingClassifier) and bool(
        params.get("categorical_features")
    )


def preprocessor(model: ModelSettings, schema: Schema, estimator: Any) -> ColumnTransformer:
    """scikit-learn's ColumnTransformer for mixed columns: numeric and boolean ones imputed
    (and scaled if asked), categorical ones imputed and one-hot (or ordinal) encoded, with the
    configured policy for categories never seen in training."""
    prep = model.preprocess
    numeric = [c.name for c in schema.columns if c.kind != "categorical"]
    categorical = [c.name for c in schema.categorical]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        numeric_steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy=prep.numeric_impute))
        ]
        if model.scale:
            numeric_steps.append(("scale", StandardScaler()))
        parts.append(("num", Pipeline(numeric_steps), numeric))
    impute = SimpleImputer(
        strategy=prep.categorical_impute,
        fill_value=MISSING_CATEGORY if prep.categorical_impute == "constant" else None,
    )
    encoder: Any
    ordinal = prep.encoding == "ordinal" or native_categorical(estimator, model.params)
    if ordinal:
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value" if prep.unknown != "error" else "error",
            unknown_value=-1 if prep.unknown != "error" else None,
            min_frequency=prep.min_frequency if prep.unknown == "infrequent" else None,
        )
    else:
        encoder = OneHotEncoder(
            handle_unknown={
                "ignore": "ignore",
                "infrequent": "infrequent_if_exist",
                "error": "error",
            }[prep.unknown],
            min_frequency=prep.min_frequency if prep.unknown == "infrequent" else None,
            sparse_output=False,
        )
    parts.append(("cat", Pipeline([("impute", impute), ("encode", encoder)]), categorical))
    if native_categorical(estimator, model.params):
        # The ordinal codes come last: tell the model which of its input columns they are.
        first = len(numeric)
        estimator.set_params(categorical_features=list(range(first, first + len(categorical))))
    return ColumnTransformer(parts, sparse_threshold=0.0)
