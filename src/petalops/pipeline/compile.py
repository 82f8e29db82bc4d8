"""The compile step: a fitted Pipeline into a model bundle (ONNX for any classifier, numpy for
linear ones), proven to predict like the Pipeline on every row before anything is registered."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree._tree import Tree

from petalops.data.load import Dataset, feature_frame
from petalops.data.schema import Schema
from petalops.errors import ConfigError, IntegrityError
from petalops.pipeline.hist_onnx import (
    calculate_hist_gradient_boosting_shapes,
    convert_hist_gradient_boosting,
    raise_tree_opset,
)
from petalops.runtime.bundle import Manifest, sha256_file, write_manifest
from petalops.runtime.model import IntArray, ModelRuntime, open_bundle

ONNX_OPSET = 17
# The missing category as the ONNX model's string inputs carry it (a string tensor has no NaN).
ONNX_MISSING_CATEGORY = ""


@dataclass(frozen=True)
class Candidate:
    """A compiled bundle on disk and the runtime that serves it (what the gate checks)."""

    bundle: Path
    digest: str
    runtime: ModelRuntime


def compile_candidate(
    directory: Path,
    pipeline: Pipeline,
    name: str,
    dataset: Dataset,
    profile: dict[str, Any],
    unknown: str = "ignore",
) -> Candidate:
    """Write the bundle of ``pipeline`` into ``directory`` and open it as the candidate."""
    digest = write_bundle(
        directory,
        pipeline,
        name,
        dataset.features,
        dataset.classes,
        profile,
        dataset.x,
        schema=dataset.schema,
        unknown=unknown,
    )
    return Candidate(directory, digest, open_bundle(directory, name, "candidate", digest))


def linear_params(pipeline: Pipeline) -> dict[str, Any] | None:
    """Weights and bias of ``[SimpleImputer] + [StandardScaler] + LogisticRegression`` with the
    scaler folded in, and the imputer's fill value per feature."""
    steps = [step for _, step in pipeline.steps]
    clf = steps[-1]
    if not isinstance(clf, LogisticRegression):
        return None
    fill: list[float] | None = None
    if steps and isinstance(steps[0], SimpleImputer):
        imputer = steps.pop(0)
        if imputer.statistics_.shape != (clf.coef_.shape[1],):
            return None  # an imputer that dropped a column: let ONNX handle it
        fill = [float(v) for v in imputer.statistics_]
    scalers = steps[:-1]
    if len(scalers) > 1 or (scalers and not isinstance(scalers[0], StandardScaler)):
        return None
    coef = np.asarray(clf.coef_, dtype=np.float64)
    bias = np.asarray(clf.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # binary: softmax over [0, z] equals the logistic sigmoid
        coef = np.vstack([np.zeros_like(coef), coef])
        bias = np.concatenate([[0.0], bias])
    weights = coef.T  # (n_features, n_classes)
    if scalers:
        scaler = scalers[0]
        mean = np.asarray(scaler.mean_ if scaler.with_mean else 0.0)
        scale = np.asarray(scaler.scale_ if scaler.with_std else 1.0)
        weights = weights / np.broadcast_to(scale, (weights.shape[0],))[:, None]
        bias = bias - np.broadcast_to(mean, (weights.shape[0],)) @ weights
    out: dict[str, Any] = {"weights": weights.tolist(), "bias": bias.tolist()}
    if fill is not None:
        out["fill"] = fill
    return out


def _double_imputer(scope: Any, operator: Any, container: Any) -> None:
    # skl2onnx writes a numeric SimpleImputer as the ONNX-ML Imputer operator, which has
    # float32 values only and no float64 kernel in ONNX Runtime; IsNaN + Where in the input's
    # own precision imputes exactly what scikit-learn does. Strings keep skl2onnx's converter.
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto

    imputer = operator.raw_operator
    x = concatenate_variables(scope, operator.inputs, container)
    fill = scope.get_unique_variable_name("fill")
    values = np.asarray(imputer.statistics_, dtype=np.float64)
    container.add_initializer(fill, onnx_proto.TensorProto.DOUBLE, [len(values)], values.tolist())
    isnan = scope.get_unique_variable_name("isnan")
    container.add_node("IsNaN", [x], [isnan], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [isnan, fill, x],
        [operator.outputs[0].full_name],
        name=scope.get_unique_operator_name("Where"),
    )


def _float32_exact_trees(model: Any) -> None:
    """Round every tree threshold down to the nearest float32, in place.

    scikit-learn's trees compare ``float32(x) <= threshold`` with a float64 threshold; ONNX's
    tree operators hold float32 thresholds, and rounding a threshold *to nearest* can move it
    past a float32 value, which flips that row. Rounded *down*, no float32 lies between the two
    thresholds, so the comparison is the same for every input."""
    for tree in _trees(model):
        threshold = tree.threshold
        down = threshold.astype(np.float32)
        above = down.astype(np.float64) > threshold
        down[above] = np.nextafter(down[above], np.float32(-np.inf))
        threshold[:] = down.astype(np.float64)


def _trees(model: Any) -> list[Tree]:
    found: list[Tree] = []
    seen: set[int] = set()

    def visit(obj: Any, depth: int) -> None:
        if depth > 6 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, Tree):
            found.append(obj)
            return
        if isinstance(obj, (list, tuple)):
            for item in obj:
                visit(item, depth + 1)
            return
        if isinstance(obj, np.ndarray) and obj.dtype == object:
            for item in obj.ravel():
                visit(item, depth + 1)
            return
        if hasattr(obj, "get_params"):
            for value in vars(obj).values():
                visit(value, depth + 1)

    visit(model, 0)
    return found


def onnx_inputs(schema: Schema, dtype: str) -> list[tuple[str, Any]]:
    """The ONNX model's inputs: one float matrix for numeric features, else one column each
    (strings for categorical features)."""
    tensor = DoubleTensorType if dtype == "float64" else FloatTensorType
    if schema.numeric_only:
        return [("input", tensor([None, len(schema.columns)]))]
    return [
        (c.name, StringTensorType([None, 1]) if c.kind == "categorical" else tensor([None, 1]))
        for c in schema.columns
    ]


def _for_onnx(pipeline: Pipeline) -> Pipeline:
    """A copy of the fitted Pipeline as ONNX runs it: float32-exact tree thresholds, and the
    categorical imputers looking for the empty string the runtime passes for a missing one."""
    copied = copy.deepcopy(pipeline)
    _float32_exact_trees(copied)
    for step in copied.steps:
        transformer = step[1]
        if isinstance(transformer, ColumnTransformer):
            for _, part, _ in transformer.transformers_:
                for inner in [e for _, e in part.steps] if isinstance(part, Pipeline) else [part]:
                    if isinstance(inner, SimpleImputer) and inner.statistics_.dtype == object:
                        inner.missing_values = ONNX_MISSING_CATEGORY
    return copied


def _register_boosting_converters(clf: object) -> None:
    # LightGBM and XGBoost are optional extras: their onnxmltools converters are registered
    # with skl2onnx the way onnxmltools documents it, and only for a classifier that is (or
    # wraps) one of theirs: importing both cost 1.2 s of every linear model's train (profiled).
    params = clf.get_params(deep=True).values() if hasattr(clf, "get_params") else []
    libraries = {type(e).__module__.split(".")[0] for e in [clf, *params] if hasattr(e, "fit")}
    if "lightgbm" in libraries:
        _register_lightgbm()
    if "xgboost" in libraries:
        _register_xgboost()


def _register_lightgbm() -> None:
    try:
        from lightgbm import LGBMClassifier
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
        from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
    except ImportError:
        pass


def _register_xgboost() -> None:
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
        from xgboost import XGBClassifier

        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
        )
    except ImportError:
        pass


def to_onnx_bytes(pipeline: Pipeline, schema: Schema | int) -> tuple[bytes, str]:
    """The Pipeline as ONNX bytes and the dtype of its numeric inputs (float64 where every
    operator has a float64 kernel, else float32)."""
    if isinstance(schema, int):
        schema = Schema.numeric([f"f{i}" for i in range(schema)])
    clf = pipeline.steps[-1][1]
    _register_boosting_converters(clf)
    model_copy = _for_onnx(pipeline)
    last_error: Exception | None = None
    # scikit-learn's trees compare float32(x) with their thresholds: ONNX takes float32 inputs
    # for them too (with the thresholds of `_float32_exact_trees`), float64 for the rest
    # (HistGradientBoosting compares float64 values with float64 thresholds).
    dtypes = ("float32", "float64") if _trees(model_copy) else ("float64", "float32")
    for dtype in dtypes:
        try:
            model = convert_sklearn(
                model_copy,
                initial_types=onnx_inputs(schema, dtype),
                options={"zipmap": False},
                # ai.onnx.ml 3: what onnxmltools' LightGBM and XGBoost converters need
                # (HistGradientBoosting's TreeEnsemble: 5, by `raise_tree_opset`).
                target_opset={"": ONNX_OPSET, "ai.onnx.ml": 3},
                custom_conversion_functions={
                    SimpleImputer: _double_imputer,
                    HistGradientBoostingClassifier: convert_hist_gradient_boosting,
                },
                custom_shape_calculators={
                    SimpleImputer: calculate_sklearn_imputer_output_shapes,
                    HistGradientBoostingClassifier: calculate_hist_gradient_boosting_shapes,
                },
            )
            raise_tree_opset(model)
            # skl2onnx lists opsets in set order; sorted, the same model gives the same bytes.
            opsets = sorted({(o.domain, o.version) for o in model.opset_import})
            del model.opset_import[:]
            for domain, version in opsets:
                entry = model.opset_import.add()
                entry.domain, entry.version = domain, version
            data = model.SerializeToString()
            # Some operators convert in float64 but have no float64 kernel in ONNX Runtime
            # (trees): prove the session loads, else fall back to float32.
            ort.InferenceSession(data, providers=["CPUExecutionProvider"])
            return data, dtype
        except Exception as exc:  # skl2onnx raises many types for unsupported operators
            last_error = exc
    raise ConfigError(
        f"{type(pipeline.steps[-1][1]).__name__} cannot be compiled to ONNX "
        f"({str(last_error).splitlines()[0] if str(last_error) else type(last_error).__name__}); "
        "choose a classifier skl2onnx or onnxmltools supports"
    )


def write_bundle(
    directory: Path,
    pipeline: Pipeline,
    name: str,
    features: list[str],
    classes: list[str],
    profile: dict[str, Any],
    check_x: npt.NDArray[Any],
    schema: Schema | None = None,
    unknown: str = "ignore",
) -> str:
    """Write the bundle, prove it predicts like the Pipeline on every row of ``check_x``, and
    return its sha256."""
    schema = schema or Schema.numeric(features)
    directory.mkdir(parents=True, exist_ok=True)
    onnx_bytes, dtype = to_onnx_bytes(pipeline, schema)
    (directory / "model.onnx").write_bytes(onnx_bytes)
    (directory / "profile.json").write_text(json.dumps(profile), encoding="utf-8")
    files = ["model.onnx", "profile.json"]
    linear = linear_params(pipeline) if schema.numeric_only else None
    if linear is not None:
        (directory / "linear.json").write_text(json.dumps(linear), encoding="utf-8")
        files.append("linear.json")
    stats = profile["features"]
    # The served class is the estimator's own predict, as a user of scikit-learn (and of the
    # stock MLflow flavour) checks it: for SVC(probability=True) that follows the decision
    # function, not the most probable of its Platt-scaled probabilities. ONNX's label output
    # compiles predict; a graph whose label disagrees on a row may still have the
    # probabilities' argmax agree (exact ties broken in float32), so that is tried second.
    expected = np.asarray(pipeline.predict(feature_frame(check_x, schema)), dtype=np.int64)
    refusal = ""
    for decision in ("label", "proba"):
        manifest = Manifest(
            name=name,
            features=features,
            classes=classes,
            kind="linear" if linear is not None else "onnx",
            files={f: sha256_file(directory / f) for f in files},
            input_dtype=dtype,
            feature_min=[stats[f].get("min") for f in features],
            feature_max=[stats[f].get("max") for f in features],
            schema=schema.to_json(),
            unknown=unknown,
            decision=decision,
        )
        digest = write_manifest(directory, manifest)
        reason = _disagreement(directory, name, digest, check_x, expected)
        if not reason:
            return digest
        refusal = refusal or reason
    raise IntegrityError(refusal)


def _disagreement(
    directory: Path, name: str, digest: str, check_x: npt.NDArray[Any], expected: IntArray
) -> str:
    """Why the bundle's runtimes (the fast one and ONNX) do not serve ``expected`` on every
    row of ``check_x``; empty when they do."""
    for prefer in ("auto", "onnx"):
        runtime: ModelRuntime = open_bundle(directory, name, "check", digest, prefer=prefer)
        mismatches = int((runtime.predict(check_x) != expected).sum())
        if mismatches:
            return (
                f"compiled model ({type(runtime).__name__}) disagrees with scikit-learn's "
                f"predict on {mismatches} of {len(expected)} rows; refusing to register it"
            )
    return ""
