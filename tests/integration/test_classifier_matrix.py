"""Any classifier, proven by a matrix (issue 12).

Two parts, both in `make test`:

* every classifier on Iris, wine and breast cancer: fitted, compiled, and its bundle agrees
  with scikit-learn on every training and held-out row;
* every classifier on penguins (categorical features, missing values) through the whole
  chain: train (whose compile step makes the same every-row check) -> gate -> register -> the stock MLflow flavour loads and agrees with the
  server on every held-out row -> served by every protocol -> batch scoring -> export ->
  the drift profile.

The classes and their parameters are the table of docs/classifiers.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from starlette.testclient import TestClient
from tests.utils.tabular import penguins_csv, sklearn_csv

from petalops.batch import score_file
from petalops.config import Settings
from petalops.data.load import Dataset, feature_frame, load_dataset
from petalops.errors import InputError
from petalops.monitoring.drift import DriftThresholds, drift_report
from petalops.monitoring.store import Window
from petalops.pipeline.compile import compile_candidate
from petalops.pipeline.fit import fit
from petalops.pipeline.profile import training_profile
from petalops.pipeline.split import split

NATIVE = "sklearn.ensemble.HistGradientBoostingClassifier+categorical"

# class -> (params, scale): distance- and gradient-based models get scaled inputs, as
# a user should give them; the rest run on raw features. "+categorical" is the class again
# with another configuration.
CLASSIFIERS: dict[str, tuple[dict[str, Any], bool]] = {
    "sklearn.linear_model.LogisticRegression": ({"max_iter": 1000}, True),
    "sklearn.svm.SVC": ({"probability": True}, True),
    "sklearn.neighbors.KNeighborsClassifier": ({}, True),
    "sklearn.naive_bayes.GaussianNB": ({}, False),
    "sklearn.tree.DecisionTreeClassifier": ({}, False),
    "sklearn.ensemble.RandomForestClassifier": ({}, False),
    "sklearn.ensemble.ExtraTreesClassifier": ({}, False),
    "sklearn.ensemble.GradientBoostingClassifier": ({}, False),
    "sklearn.ensemble.HistGradientBoostingClassifier": ({}, False),
    # its own categorical splits on the categorical columns (petalops encodes them ordinally)
    NATIVE: ({"categorical_features": "from_dtype"}, False),
    "sklearn.neural_network.MLPClassifier": ({"max_iter": 2000}, True),
    "lightgbm.LGBMClassifier": ({}, False),
    "xgboost.XGBClassifier": ({}, False),
    # no predict_proba of its own: wrapped in CalibratedClassifierCV (model.calibrated)
    "sklearn.svm.LinearSVC": ({}, True),
}
# model.calibrated per class; the whole chain below leaves these out (~20 s each here, and
# the chain of a CalibratedClassifierCV is the chain of any other ONNX-compiled Pipeline).
CALIBRATED = {"sklearn.svm.LinearSVC": "sigmoid"}
MIXED = ("penguins", "penguins_binary")
DATASETS = ("iris", "wine", "breast_cancer", *MIXED)
CLASSES = {"breast_cancer": 2, "penguins_binary": 2}
# Penguins goes through train in the chain test, whose compile step refuses any bundle that
# disagrees with the Pipeline on a row: the compile matrix need not repeat it, but for the
# native categorical splits, whose unseen categories and missing values it checks.
COMPILE = [
    (model, dataset)
    for model in CLASSIFIERS
    for dataset in DATASETS
    if ((dataset in MIXED) if model == NATIVE else (dataset != "penguins"))
]


def _data(name: str, directory: Path) -> tuple[dict[str, Any], Path | None]:
    if name == "iris":
        return {}, None
    if name == "penguins":
        return {"source": str(penguins_csv(directory)), "target": "species"}, None
    if name == "penguins_binary":
        # Adelie or Chinstrap (both live on Dream island): two classes, the same columns,
        # missing values and categories
        frame = pd.read_csv(penguins_csv(directory))
        path = directory / "penguins_binary.csv"
        frame[frame["species"].isin(["Adelie", "Chinstrap"])].to_csv(path, index=False)
        return {"source": str(path), "target": "species"}, None
    return {"source": str(sklearn_csv(directory, name)), "target": "label"}, None


def _settings(home: Path, data: dict[str, Any], model: str, **extra: Any) -> Settings:
    params, scale = CLASSIFIERS[model]
    preprocess = extra.pop("preprocess", {})
    return Settings(  # type: ignore[call-arg]
        home=home,
        data=data,
        model={
            "class": model.partition("+")[0],
            "params": params,
            "scale": scale,
            "calibrated": CALIBRATED.get(model, "off"),
            "preprocess": preprocess,
        },
        **extra,
    )


def _odd_rows(dataset: Dataset) -> Any:
    """Rows with what serving meets beyond the training rows: missing numbers and
    categories (NaN, the canonical form) and categories never seen in training."""
    x = dataset.x[:80].copy()
    for j, column in enumerate(dataset.schema.columns):
        x[j % 4 :: 4, j] = np.nan
        if column.kind == "categorical":
            x[(j + 1) % 4 :: 4, j] = f"never-seen-{column.name}"
    return x


@pytest.mark.slow
@pytest.mark.parametrize(("model", "dataset"), COMPILE)
def test_every_classifier_compiles_to_a_bundle_that_agrees_on_every_row(
    tmp_path: Path, model: str, dataset: str
) -> None:
    data, _ = _data(dataset, tmp_path)
    settings = _settings(tmp_path / ".petalops", data, model)
    loaded = load_dataset(settings.data)
    rows = split(settings, loaded)
    pipeline = fit(settings, rows)
    profile = training_profile(settings, loaded, rows, pipeline)
    # compile_candidate refuses a bundle that disagrees with the Pipeline on any row
    candidate = compile_candidate(tmp_path / "bundle", pipeline, "m", loaded, profile)
    # the class served is scikit-learn's own predict, by every path the server takes
    expected = pipeline.predict(feature_frame(loaded.x, loaded.schema)).tolist()
    runtime = candidate.runtime
    assert runtime.predict(loaded.x).tolist() == expected
    assert runtime.decide(runtime.predict_proba(loaded.x)).tolist() == expected
    assert [runtime.predict_one(list(row))[0] for row in loaded.x[:40]] == expected[:40]
    assert len(loaded.classes) == CLASSES.get(dataset, 3)
    if dataset in MIXED:
        odd = _odd_rows(loaded)
        assert runtime.check_unseen(odd) == {"island": 20, "sex": 20}
        expected = pipeline.predict(feature_frame(odd, loaded.schema)).tolist()
        assert runtime.predict(odd).tolist() == expected
        assert [runtime.predict_one(list(row))[0] for row in odd] == expected
    if model == NATIVE:
        assert pipeline.named_steps["clf"].is_categorical_.sum() == 2


@pytest.mark.slow
@pytest.mark.parametrize("unknown", ["infrequent", "error"])
def test_native_categorical_splits_follow_the_unknown_policy(tmp_path: Path, unknown: str) -> None:
    data, _ = _data("penguins_binary", tmp_path)
    settings = _settings(tmp_path / ".petalops", data, NATIVE, preprocess={"unknown": unknown})
    loaded = load_dataset(settings.data)
    rows = split(settings, loaded)
    pipeline = fit(settings, rows)
    profile = training_profile(settings, loaded, rows, pipeline)
    runtime = compile_candidate(
        tmp_path / "bundle", pipeline, "m", loaded, profile, unknown
    ).runtime
    odd = _odd_rows(loaded)
    if unknown == "error":
        with pytest.raises(InputError, match="never seen in training"):
            runtime.check_unseen(odd)
        odd = odd[[not str(v).startswith("never-seen") for v in odd[:, 0]]]
        odd = odd[[not str(v).startswith("never-seen") for v in odd[:, 5]]]
        assert runtime.check_unseen(odd) == {}
    expected = pipeline.predict(feature_frame(odd, loaded.schema)).tolist()
    assert runtime.predict(odd).tolist() == expected


@pytest.mark.slow
@pytest.mark.parametrize("model", [m for m in CLASSIFIERS if m not in CALIBRATED])
def test_every_classifier_goes_through_the_whole_chain_on_penguins(
    empty_settings: Settings, tmp_path: Path, model: str
) -> None:
    import mlflow

    from petalops.experiments.export import export_onnx
    from petalops.pipeline.run import train
    from petalops.registry import load_profile, load_runtime
    from petalops.serving.app import create_app

    path = penguins_csv(tmp_path)
    settings = _settings(
        empty_settings.home_dir,
        {"source": str(path), "target": "species"},
        model,
        project="penguins",
        # the gate's own judgement is tested elsewhere; here every model must get through
        gate={"min_accuracy": 0.8},
    )
    result = train(settings, path)
    assert result.gate.passed and result.version == "1"

    dataset = load_dataset(settings.data, path)
    rows = split(settings, dataset)
    frame = rows.frame(rows.x_test)
    runtime = load_runtime(settings, "penguins/1")
    served = runtime.predict(rows.x_test)

    # the stock MLflow flavour, loaded by plain MLflow, answers like the server
    mlflow.set_tracking_uri(settings.tracking_uri)
    flavour = mlflow.pyfunc.load_model("models:/penguins/1")
    stock = np.asarray(flavour.predict(frame), dtype=np.int64)
    assert stock.tolist() == served.tolist()
    # and the probabilities too (SVC's Platt-scaled ones, whose argmax is not its predict)
    sk = mlflow.sklearn.load_model("models:/penguins/1")
    assert np.allclose(sk.predict_proba(frame), runtime.predict_proba(rows.x_test), atol=1e-4)

    # every protocol, with a missing number and a missing category in the first row
    held = [[None if isinstance(v, float) and np.isnan(v) else v for v in r] for r in rows.x_test]
    held[0][1], held[0][5] = None, None
    expected = runtime.predict(np.asarray(held, dtype=object)).tolist()
    classes = dataset.classes
    fd = os.open(tmp_path / "server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        app = create_app(settings, log_fd=fd, open_sink=False)
        with TestClient(app, raise_server_exceptions=False) as client:
            client.get("/readyz")
            records = [dict(zip(dataset.features, r, strict=True)) for r in held]
            v1 = client.post("/v1/predict", json={"instances": records[:10]})
            assert v1.status_code == 200, v1.text
            assert [p["prediction"] for p in v1.json()["predictions"]] == expected[:10]
            split_body = {"columns": dataset.features, "data": held[:10]}
            inv = client.post("/invocations", json={"dataframe_split": split_body})
            assert inv.json()["predictions"] == expected[:10]
            inv = client.post("/invocations", json={"dataframe_records": records[:10]})
            assert inv.json()["predictions"] == expected[:10]
            one = client.post("/predict", json={"features": held[0]})
            assert one.json()["prediction"] == expected[0]
            kserve = client.post("/v1/models/penguins:predict", json={"instances": records[:5]})
            assert kserve.json()["predictions"] == expected[:5]
            inputs = [
                {
                    "name": f,
                    "datatype": "BYTES" if c.kind == "categorical" else "FP64",
                    "shape": [10, 1],
                    "data": [r[j] for r in held[:10]],
                }
                for j, (f, c) in enumerate(
                    zip(dataset.features, dataset.schema.columns, strict=True)
                )
            ]
            oip = client.post("/v2/models/penguins/infer", json={"inputs": inputs})
            assert oip.status_code == 200, oip.text
            label = next(o for o in oip.json()["outputs"] if o["name"] == "label")
            assert label["data"] == expected[:10]
            assert {p["class_name"] for p in v1.json()["predictions"]} <= set(classes)
    finally:
        os.close(fd)

    # batch scoring of the whole file agrees with the Pipeline
    out = tmp_path / "scored.parquet"
    score_file(runtime, path, out)
    pipeline_answer = sk.predict(feature_frame(dataset.x, dataset.schema))
    assert pd.read_parquet(out)["prediction_index"].tolist() == pipeline_answer.tolist()

    # the exported ONNX file runs under plain ONNX Runtime and agrees
    exported = export_onnx(settings, "penguins/1", tmp_path / "model.onnx", dtype="float64")
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    feeds = {}
    for j, column in enumerate(dataset.schema.columns):
        values = rows.x_test[:, j]
        if column.kind == "categorical":
            feeds[column.name] = np.asarray(
                ["" if not isinstance(v, str) else v for v in values], dtype=object
            ).reshape(-1, 1)
        else:
            feeds[column.name] = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    session_inputs = {i.name: i.type for i in session.get_inputs()}
    assert exported.signature()["inputs"]["island"] == "string [N, 1]"
    for name, values in feeds.items():
        if session_inputs[name] == "tensor(float)":
            feeds[name] = values.astype(np.float32)
    labels, probabilities = session.run(None, feeds)
    assert labels.tolist() == served.tolist()
    assert np.allclose(probabilities, runtime.predict_proba(rows.x_test), atol=1e-4)

    # the drift profile describes the categories, and the held-out rows do not drift
    profile = load_profile(settings, "penguins/1")
    assert profile["features"]["island"]["kind"] == "categorical"
    window = Window(
        features=rows.x_test,
        predictions=served,
        ts=np.arange(len(served), dtype=np.float64),
        versions={"1": len(served)},
    )
    report = drift_report(window, profile, DriftThresholds(min_rows=10))
    assert report.sufficient and not report.features["island"].drift
