import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from petalops.config import DataSettings
from petalops.data.load import load_dataset
from petalops.errors import IntegrityError
from petalops.pipeline.compile import write_bundle
from petalops.pipeline.profile import build_profile
from petalops.runtime.model import (
    LinearRuntime,
    OnnxRuntime,
    Probabilities,
    open_bundle,
    with_labels,
)

DATA = load_dataset(DataSettings())


def _bundle(tmp_path: Path, pipeline: Pipeline) -> tuple[Path, str, Pipeline]:
    frame = pd.DataFrame(DATA.x, columns=DATA.features)
    pipeline.fit(frame, DATA.y)
    profile = build_profile(DATA.x, DATA.y, DATA.features, DATA.classes)
    digest = write_bundle(tmp_path, pipeline, "iris", DATA.features, DATA.classes, profile, DATA.x)
    return tmp_path, digest, pipeline


@pytest.mark.parametrize("scale", [False, True])
def test_linear_runtime_matches_sklearn_exactly(tmp_path: Path, scale: bool) -> None:
    steps = [("scale", StandardScaler())] if scale else []
    path, digest, pipe = _bundle(
        tmp_path, Pipeline([*steps, ("clf", LogisticRegression(max_iter=200))])
    )
    runtime = open_bundle(path, "iris", "1", digest)
    assert isinstance(runtime, LinearRuntime)
    expected = pipe.predict_proba(pd.DataFrame(DATA.x, columns=DATA.features))
    np.testing.assert_allclose(runtime.predict_proba(DATA.x), expected, atol=1e-12)
    assert (runtime.predict(DATA.x) == expected.argmax(axis=1)).all()
    for row, want in zip(DATA.x[::7], expected[::7], strict=True):
        index, proba = runtime.predict_one(row.tolist())
        assert index == int(want.argmax())
        np.testing.assert_allclose(proba, want, atol=1e-12)
    onnx = open_bundle(path, "iris", "1", digest, prefer="onnx")
    assert isinstance(onnx, OnnxRuntime)
    np.testing.assert_allclose(onnx.predict_proba(DATA.x), expected, atol=1e-6)


def test_any_classifier_runs_through_onnx(tmp_path: Path) -> None:
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    path, digest, pipe = _bundle(tmp_path, Pipeline([("clf", forest)]))
    runtime = open_bundle(path, "iris", "1", digest)
    assert isinstance(runtime, OnnxRuntime)
    expected = pipe.predict(pd.DataFrame(DATA.x, columns=DATA.features))
    assert (runtime.predict(DATA.x) == expected).mean() >= 0.99


def test_binary_logistic_regression(tmp_path: Path) -> None:
    mask = DATA.y < 2
    x, y = DATA.x[mask], DATA.y[mask]
    pipe = Pipeline([("clf", LogisticRegression())]).fit(pd.DataFrame(x, columns=DATA.features), y)
    profile = build_profile(x, y, DATA.features, DATA.classes[:2])
    digest = write_bundle(tmp_path, pipe, "bin", DATA.features, DATA.classes[:2], profile, x)
    runtime = open_bundle(tmp_path, "bin", "1", digest)
    expected = pipe.predict_proba(pd.DataFrame(x, columns=DATA.features))
    np.testing.assert_allclose(runtime.predict_proba(x), expected, atol=1e-12)


def test_tampering_is_refused(tmp_path: Path) -> None:
    path, digest, _ = _bundle(tmp_path, Pipeline([("clf", LogisticRegression(max_iter=200))]))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        open_bundle(path, "iris", "1", "0" * 64)
    linear = path / "linear.json"
    linear.write_text(linear.read_text().replace("0", "1", 1))
    with pytest.raises(IntegrityError, match=r"checksum mismatch for .*linear.json"):
        open_bundle(path, "iris", "1", digest)
    (path / "linear.json").unlink()
    with pytest.raises(IntegrityError, match="missing linear.json"):
        open_bundle(path, "iris", "1", digest)


def test_out_of_range_counts_values_outside_training(tmp_path: Path) -> None:
    path, digest, _ = _bundle(tmp_path, Pipeline([("clf", LogisticRegression(max_iter=200))]))
    runtime = open_bundle(path, "iris", "1", digest)
    assert runtime.out_of_range(DATA.x) == 0
    assert runtime.out_of_range(np.array([[100.0, 3.0, 1.0, -5.0]])) == 2


def test_an_onnx_bundle_serves_its_label_output_and_an_old_one_the_argmax(
    tmp_path: Path,
) -> None:
    path, digest, pipeline = _bundle(
        tmp_path, Pipeline([("clf", RandomForestClassifier(n_estimators=5, random_state=0))])
    )
    runtime = open_bundle(path, "iris", "1", digest)
    assert runtime.manifest.decision == "label"
    proba = runtime.predict_proba(DATA.x)
    assert isinstance(proba, Probabilities) and proba.labels is not None
    assert runtime.decide(proba).tolist() == runtime.predict(DATA.x).tolist()
    # the labels are the model's own, whatever the probabilities say; a slice has none
    assert runtime.decide(with_labels(proba, np.zeros(len(proba)))).tolist() == [0] * len(proba)
    assert getattr(proba[:3], "labels", None) is None
    # a bundle written before manifests named their decision serves the most probable class
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["decision"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    old = open_bundle(path, "iris", "1", None)
    assert old.manifest.decision == "proba"
    assert getattr(old.predict_proba(DATA.x), "labels", None) is None
    expected = pipeline.predict(pd.DataFrame(DATA.x, columns=DATA.features)).tolist()
    assert old.predict(DATA.x).tolist() == expected
