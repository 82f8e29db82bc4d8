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

from petalops.config import DataSettings
from petalops.data.load import load_dataset
from petalops.pipeline.compile import compile_candidate, linear_params
from petalops.pipeline.profile import build_profile

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
