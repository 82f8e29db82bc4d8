import pytest

from petalops.config import load_settings
from petalops.errors import ConfigError
from petalops.pipeline.build import build_pipeline

FOREST = "sklearn.ensemble.RandomForestClassifier"


def test_a_class_parameter_is_set() -> None:
    settings = load_settings(overrides=[f"model.class={FOREST}", "model.params.n_estimators=50"])
    clf = build_pipeline(settings.model, seed=7).steps[-1][1]
    assert (type(clf).__name__, clf.n_estimators, clf.random_state) == (
        "RandomForestClassifier",
        50,
        7,
    )


def test_an_unknown_parameter_names_the_valid_ones() -> None:
    settings = load_settings(overrides=[f"model.class={FOREST}", "model.params.max_iter=200"])
    with pytest.raises(ConfigError) as caught:
        build_pipeline(settings.model, seed=1)
    message = caught.value.message
    assert "\n" not in message
    assert message.startswith("model.params.max_iter is not a parameter of RandomForestClassifier")
    for valid in ("n_estimators", "max_depth", "min_samples_leaf"):
        assert valid in message


def test_a_class_that_is_not_a_classifier_is_refused() -> None:
    settings = load_settings(overrides=["model.class=sklearn.preprocessing.StandardScaler"])
    with pytest.raises(ConfigError, match="is not a scikit-learn classifier"):
        build_pipeline(settings.model, seed=1)
    settings = load_settings(overrides=["model.class=sklearn.nope.Nothing"])
    with pytest.raises(ConfigError, match="cannot be imported"):
        build_pipeline(settings.model, seed=1)
