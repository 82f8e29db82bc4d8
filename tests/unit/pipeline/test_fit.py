"""The fit step: the configured Pipeline, fitted; its learned parameters; bad parameters."""

from __future__ import annotations

import pandas as pd
import pytest

from petalops.config import DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.errors import ConfigError, PetalopsError
from petalops.pipeline.fit import fit, fitted_parameters
from petalops.pipeline.split import split

DATA = load_dataset(DataSettings())


def test_the_fitted_pipeline_learns_the_training_rows() -> None:
    settings = Settings()
    rows = split(settings, DATA)
    pipeline = fit(settings, rows, DATA.features)
    predicted = pipeline.predict(pd.DataFrame(rows.x_train, columns=DATA.features))
    assert (predicted == rows.y_train).mean() > 0.9
    assert [name for name, _ in pipeline.steps] == ["impute", "clf"]


def test_fitted_parameters_are_the_learned_arrays_and_numbers() -> None:
    settings = Settings(model={"scale": True})  # type: ignore[arg-type]
    pipeline = fit(settings, split(settings, DATA), DATA.features)
    fitted = fitted_parameters(pipeline)
    assert len(fitted["clf.coef_"]) == 3 and len(fitted["clf.coef_"][0]) == 4
    assert fitted["scale.mean_"] == pipeline.named_steps["scale"].mean_.tolist()
    assert fitted["clf.n_features_in_"] == 4
    assert not any(key.split(".")[1].startswith("_") for key in fitted)
    assert "clf.classes_" in fitted  # integer labels are learned values too


def test_parameters_the_estimator_refuses_at_fit_name_the_class() -> None:
    settings = Settings(model={"params": {"C": -1.0}})  # type: ignore[arg-type]
    with pytest.raises(
        PetalopsError, match=r"rejected by sklearn\.linear_model\.LogisticRegression"
    ):
        fit(settings, split(settings, DATA), DATA.features)


def test_an_unknown_parameter_is_a_config_error() -> None:
    settings = Settings(model={"params": {"nope": 1}})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is not a parameter of LogisticRegression"):
        fit(settings, split(settings, DATA), DATA.features)
