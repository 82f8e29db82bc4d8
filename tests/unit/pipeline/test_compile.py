"""The compile step: the bundle predicts like the Pipeline it was compiled from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from tests.utils.tabular import penguins_csv

from petalops.config import DataSettings, Settings
from petalops.data.load import Dataset, feature_frame, load_dataset
from petalops.pipeline.compile import _for_onnx, compile_candidate, linear_params, write_bundle
from petalops.pipeline.fit import fit
from petalops.pipeline.profile import build_profile, training_profile
from petalops.pipeline.split import Split, split
from petalops.runtime.model import open_bundle

DATA = load_dataset(DataSettings())
FRAME = pd.DataFrame(DATA.x, columns=DATA.features)


def _fitted(*steps: tuple[str, object]) -> Pipeline:
    return Pipeline(list(steps)).fit(FRAME, DATA.y)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pipeline", "kind"),
    [
        (_fitted(("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=300))), "linear"),
        (_fitted(("clf", RandomForestClassifier(n_estimators=5, random_state=0))), "onnx"),
    ],
)
def test_the_candidate_serves_what_the_pipeline_predicts(
    tmp_path: Path, pipeline: Pipeline, kind: str
) -> None:
    profile = build_profile(DATA.x, DATA.y, DATA.features, DATA.classes)
    candidate = compile_candidate(tmp_path / "bundle", pipeline, "iris", DATA, profile)
    assert candidate.runtime.version == "candidate"
    assert (candidate.bundle / "manifest.json").is_file()
    assert ((candidate.bundle / "linear.json").is_file()) == (kind == "linear")
    assert candidate.runtime.predict(DATA.x).tolist() == pipeline.predict(FRAME).tolist()


def test_linear_params_fold_the_scaler_into_the_weights() -> None:
    pipeline = _fitted(("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=300)))
    params = linear_params(pipeline)
    assert params is not None
    logits = DATA.x @ np.asarray(params["weights"]) + np.asarray(params["bias"])
    assert np.allclose(logits, pipeline.decision_function(FRAME))
    assert linear_params(_fitted(("clf", RandomForestClassifier(n_estimators=2)))) is None


def _trained(settings: Settings, path: Path | None = None) -> tuple[Dataset, Split, Pipeline]:
    dataset = load_dataset(settings.data, path)
    rows = split(settings, dataset)
    return dataset, rows, fit(settings, rows)


def test_a_default_random_forest_agrees_with_scikit_learn_on_every_iris_row(
    tmp_path: Path,
) -> None:
    # 100 trees put Iris row 134 on an exact 0.5/0.5 tie, and float32 thresholds rounded to
    # nearest flipped rows before: both must come out as scikit-learn's answer.
    settings = Settings(model={"class": "sklearn.ensemble.RandomForestClassifier"})  # type: ignore[arg-type]
    dataset, rows, pipeline = _trained(settings)
    profile = training_profile(settings, dataset, rows, pipeline)
    candidate = compile_candidate(tmp_path / "bundle", pipeline, "iris", dataset, profile)
    expected = pipeline.predict(feature_frame(dataset.x, dataset.schema))
    assert candidate.runtime.predict(dataset.x).tolist() == expected.tolist()


def test_tree_thresholds_are_rounded_down_to_float32() -> None:
    pipeline = _fitted(("clf", RandomForestClassifier(n_estimators=3, random_state=0)))
    before = [t.tree_.threshold.copy() for t in pipeline.named_steps["clf"].estimators_]
    copied = _for_onnx(pipeline)
    for tree, old in zip(copied.named_steps["clf"].estimators_, before, strict=True):
        new = tree.tree_.threshold
        assert (new <= old).all()
        assert (new.astype(np.float32).astype(np.float64) == new).all()
    # the Pipeline itself is untouched
    assert (pipeline.named_steps["clf"].estimators_[0].tree_.threshold == before[0]).all()


@pytest.mark.parametrize(
    "model",
    [
        {"class": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": 30}},
        {"class": "sklearn.linear_model.LogisticRegression", "scale": True},
    ],
)
def test_a_mixed_type_pipeline_compiles_to_one_onnx_input_per_column(
    tmp_path: Path, model: dict[str, object]
) -> None:
    path = penguins_csv(tmp_path)
    settings = Settings(data={"source": str(path), "target": "species"}, model=model)  # type: ignore[arg-type]
    dataset, rows, pipeline = _trained(settings, path)
    assert not dataset.schema.numeric_only
    profile = training_profile(settings, dataset, rows, pipeline)
    candidate = compile_candidate(tmp_path / "bundle", pipeline, "penguins", dataset, profile)
    runtime = candidate.runtime
    assert runtime.manifest.kind == "onnx"
    assert runtime.manifest.schema[0]["kind"] == "categorical"
    expected = pipeline.predict(feature_frame(dataset.x, dataset.schema))
    assert runtime.predict(dataset.x).tolist() == expected.tolist()
    # a missing category and a missing number are imputed, as scikit-learn does
    row = [None, 39.1, None, 181.0, 3750.0, None]
    frame = feature_frame(np.asarray([row], dtype=object), dataset.schema)
    assert runtime.predict_one(row)[0] == int(pipeline.predict(frame)[0])


def test_svc_serves_its_own_predict_with_platt_probabilities(tmp_path: Path) -> None:
    # SVC(probability=True).predict follows the decision function; its probabilities are
    # Platt's, and on breast cancer their argmax disagrees with predict on some rows.
    from sklearn.datasets import load_breast_cancer
    from sklearn.svm import SVC

    x, y = load_breast_cancer(return_X_y=True)
    features = [f"f{i}" for i in range(x.shape[1])]
    frame = pd.DataFrame(x, columns=features)
    pipeline = Pipeline([("scale", StandardScaler()), ("clf", SVC(probability=True))])
    pipeline.fit(frame, y)
    predicted = pipeline.predict(frame)
    assert (pipeline.predict_proba(frame).argmax(axis=1) != predicted).any()
    classes = ["malignant", "benign"]
    profile = build_profile(x, y, features, classes)
    digest = write_bundle(tmp_path, pipeline, "svc", features, classes, profile, x)
    runtime = open_bundle(tmp_path, "svc", "1", digest)
    assert runtime.manifest.decision == "label"
    assert runtime.predict(x).tolist() == predicted.tolist()
    proba = runtime.predict_proba(x)
    assert runtime.decide(proba).tolist() == predicted.tolist()
    assert np.allclose(proba, pipeline.predict_proba(frame), atol=1e-6)
    assert [runtime.predict_one(list(r))[0] for r in x] == predicted.tolist()
