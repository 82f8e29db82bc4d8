"""The runtimes: mixed-type rows, missing values and categories never seen in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.utils.tabular import penguins_csv

from petalops.config import Settings
from petalops.data.load import feature_frame, load_dataset
from petalops.errors import InputError
from petalops.pipeline.compile import compile_candidate
from petalops.pipeline.fit import fit
from petalops.pipeline.profile import training_profile
from petalops.pipeline.split import split
from petalops.runtime.model import LinearRuntime, ModelRuntime


def _runtime(tmp_path: Path, source: str | None, unknown: str = "ignore") -> ModelRuntime:
    data = {"source": source, "target": "species"} if source else {}
    settings = Settings(data=data, model={"preprocess": {"unknown": unknown}})  # type: ignore[arg-type]
    dataset = load_dataset(settings.data, source)
    rows = split(settings, dataset)
    pipeline = fit(settings, rows)
    profile = training_profile(settings, dataset, rows, pipeline)
    bundle = compile_candidate(tmp_path / unknown, pipeline, "m", dataset, profile, unknown)
    return bundle.runtime


def test_the_linear_fast_path_imputes_a_missing_value(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, None)
    assert isinstance(runtime, LinearRuntime) and runtime.fill is not None
    row = [5.1, None, 1.4, 0.2]
    filled = [5.1, float(runtime.fill[1]), 1.4, 0.2]
    assert runtime.predict_one(row) == runtime.predict_one(filled)
    batch = np.asarray([[5.1, np.nan, 1.4, 0.2]])
    assert np.allclose(runtime.predict_proba(batch), runtime.predict_proba(np.asarray([filled])))


def test_unseen_categories_are_counted_and_follow_the_policy(tmp_path: Path) -> None:
    path = str(penguins_csv(tmp_path))
    rows = np.asarray(
        [
            ["Atlantis", 39.1, 18.7, 181.0, 3750.0, "male"],
            ["Biscoe", 39.1, 18.7, 181.0, 3750.0, "unknown"],
            ["Biscoe", 39.1, 18.7, 181.0, 3750.0, None],
        ],
        dtype=object,
    )
    ignore = _runtime(tmp_path, path, "ignore")
    assert ignore.check_unseen(rows) == {"island": 1, "sex": 1}
    assert ignore.predict(rows).shape == (3,)
    strict = _runtime(tmp_path, path, "error")
    with pytest.raises(InputError) as info:
        strict.check_unseen(rows)
    message = info.value.message
    assert message.startswith("feature 'island' has the category 'Atlantis', never seen in")
    assert "Biscoe" in message and "model.preprocess.unknown" in message
    assert strict.check_unseen(rows[2:]) == {}
    frame = feature_frame(rows[2:], strict.schema)
    assert frame["sex"].isna().all()


def test_first_max_is_argmax_over_the_class_rows_with_its_ties_and_nans() -> None:
    from petalops.runtime.model import first_max

    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=(4, 5000)), 1)  # many exact ties
    assert (first_max(scores) == scores.argmax(axis=0)).all()
    scores[2, 7] = np.nan
    scores[1, 9] = np.inf
    assert (first_max(scores) == scores.argmax(axis=0)).all()
    one = np.array([[1.0, 2.0], [1.0, 3.0], [0.5, 3.0]])
    assert first_max(one).tolist() == [0, 1]  # the first of equal maxima, as argmax
