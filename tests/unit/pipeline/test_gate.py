import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from tests.utils.tabular import penguins_csv

from petalops.config import DataSettings, GateSettings, Settings
from petalops.data.load import iris_frame, load_dataset
from petalops.pipeline.compile import compile_candidate, write_bundle
from petalops.pipeline.evaluate import classification_metrics, evaluate
from petalops.pipeline.fit import fit
from petalops.pipeline.gate import GateResult, run_gate
from petalops.pipeline.profile import build_profile, training_profile
from petalops.pipeline.split import split
from petalops.runtime.model import ModelRuntime, open_bundle

DATA = load_dataset(DataSettings())


def _runtime(tmp_path: Path, y: np.ndarray) -> ModelRuntime:
    pipe = Pipeline([("clf", LogisticRegression(max_iter=200))])
    pipe.fit(pd.DataFrame(DATA.x, columns=DATA.features), y)
    profile = build_profile(DATA.x, y, DATA.features, DATA.classes)
    digest = write_bundle(tmp_path, pipe, "iris", DATA.features, DATA.classes, profile, DATA.x)
    return open_bundle(tmp_path, "iris", "1", digest)


def _metrics(runtime: ModelRuntime) -> dict[str, float]:
    proba = runtime.predict_proba(DATA.x)
    return classification_metrics(DATA.y, proba.argmax(axis=1), proba, DATA.classes)


def test_good_model_passes_every_check(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, DATA.y)
    result = run_gate(runtime, _metrics(runtime), DATA.x, GateSettings(), 0.96, "1")
    assert result.passed, result.reason()
    names = {c.name for c in result.checks}
    assert names == {
        "min_accuracy",
        "champion_regression",
        "min_class_recall",
        "known_examples",
        "row_order_invariance",
        "scale_tolerance",
    }


def test_broken_model_is_rejected_with_named_checks(tmp_path: Path) -> None:
    # Trained on labels rotated by one: it answers confidently and wrongly.
    runtime = _runtime(tmp_path, (DATA.y + 1) % 3)
    result = run_gate(runtime, _metrics(runtime), DATA.x, GateSettings(), None)
    failed = {c.name for c in result.failures}
    assert {"min_accuracy", "min_class_recall", "known_examples"} <= failed
    assert "[5.1, 3.5, 1.4, 0.2] -> versicolor (expected setosa)" in result.reason()


def test_regression_against_champion(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, DATA.y)
    metrics = _metrics(runtime)
    gate = GateSettings(max_regression=0.01)
    assert run_gate(runtime, metrics, DATA.x, gate, metrics["accuracy"] + 0.005, "1").passed
    result = run_gate(runtime, metrics, DATA.x, gate, metrics["accuracy"] + 0.02, "1")
    assert [c.name for c in result.failures] == ["champion_regression"]


@pytest.mark.parametrize("tolerance", [0.3])
def test_scale_tolerance_flags_fragile_models(tmp_path: Path, tolerance: float) -> None:
    runtime = _runtime(tmp_path, DATA.y)
    gate = GateSettings(scale_tolerance=tolerance, max_flip_rate=0.0)
    result = run_gate(runtime, _metrics(runtime), DATA.x, gate, None)
    assert [c.name for c in result.failures] == ["scale_tolerance"]
    assert "e.g." in result.reason()


def _trained_gate(settings: Settings, path: Path | None) -> GateResult:
    dataset = load_dataset(settings.data, path)
    rows = split(settings, dataset)
    pipeline = fit(settings, rows)
    scores = evaluate(pipeline, rows, dataset)
    profile = training_profile(settings, dataset, rows, pipeline)
    bundle = path.parent if path else Path(tempfile.mkdtemp(prefix="petalops-gate-"))
    candidate = compile_candidate(bundle / "bundle", pipeline, "m", dataset, profile)
    return run_gate(candidate.runtime, scores.metrics, rows.x_test, settings.gate, None)


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        "sklearn.ensemble.RandomForestClassifier",
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "lightgbm.LGBMClassifier",
    ],
)
@pytest.mark.parametrize("data", ["iris", "penguins"])
def test_the_default_gate_passes_default_tree_ensembles(
    tmp_path: Path, model: str, data: str
) -> None:
    path = penguins_csv(tmp_path) if data == "penguins" else None
    source = {"source": str(path), "target": "species"} if path else {}
    settings = Settings(data=source, model={"class": model})  # type: ignore[arg-type]
    result = _trained_gate(settings, path)
    assert result.passed, result.reason()


def test_a_truly_unstable_model_fails_scale_tolerance(tmp_path: Path) -> None:
    # A fully grown tree on shuffled labels: certain of every answer (p = 1), and its
    # thresholds sit between neighbouring rows, so a 1% nudge overturns confident answers.
    rng = np.random.default_rng(0)
    frame = iris_frame()
    frame["species"] = rng.permutation(frame["species"].to_numpy())
    path = tmp_path / "shuffled.csv"
    frame.to_csv(path, index=False)
    settings = Settings(
        data={"source": str(path), "target": "species"},  # type: ignore[arg-type]
        model={"class": "sklearn.tree.DecisionTreeClassifier"},  # type: ignore[arg-type]
        gate={"min_accuracy": 0.0, "min_class_recall": 0.0},  # type: ignore[arg-type]
    )
    result = _trained_gate(settings, path)
    assert [c.name for c in result.failures] == ["scale_tolerance"]
    assert "of confident rows (p >= 0.8) change class" in result.reason()
