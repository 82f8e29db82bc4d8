import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from petalops.config import load_settings
from petalops.data.schema import ColumnSchema, Schema
from petalops.errors import ConfigError
from petalops.pipeline.build import build_pipeline, classifier

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


def _schema() -> Schema:
    return Schema(
        (
            ColumnSchema("length", "numeric"),
            ColumnSchema("island", "categorical", categories={"Biscoe": 3, "Dream": 2}),
            ColumnSchema("tagged", "boolean"),
        )
    )


@pytest.mark.parametrize(
    ("unknown", "handle", "min_frequency"),
    [
        ("ignore", "ignore", None),
        ("infrequent", "infrequent_if_exist", 5),
        ("error", "error", None),
    ],
)
def test_mixed_columns_get_scikit_learns_preprocessing(
    unknown: str, handle: str, min_frequency: int | None
) -> None:
    settings = load_settings(overrides=[f"model.preprocess.unknown={unknown}", "model.scale=true"])
    pipeline = build_pipeline(settings.model, seed=1, schema=_schema())
    prep = pipeline.named_steps["prep"]
    assert isinstance(prep, ColumnTransformer)
    parts = {name: (part, columns) for name, part, columns in prep.transformers}
    assert parts["num"][1] == ["length", "tagged"]
    assert [n for n, _ in parts["num"][0].steps] == ["impute", "scale"]
    assert parts["cat"][1] == ["island"]
    encoder = parts["cat"][0].named_steps["encode"]
    assert isinstance(encoder, OneHotEncoder)
    assert (encoder.handle_unknown, encoder.min_frequency) == (handle, min_frequency)


def test_numeric_features_keep_one_matrix_with_an_imputer() -> None:
    pipeline = build_pipeline(
        load_settings().model, seed=1, schema=Schema.numeric(["a", "b"], True)
    )
    assert [name for name, _ in pipeline.steps] == ["impute", "clf"]
    strict = Schema.numeric(["a", "b"])
    assert [n for n, _ in build_pipeline(load_settings().model, 1, strict).steps] == ["clf"]


def test_histgradientboosting_may_split_on_categories_itself() -> None:
    settings = load_settings(
        overrides=[
            "model.class=sklearn.ensemble.HistGradientBoostingClassifier",
            "model.params.categorical_features=from_dtype",
        ]
    )
    pipeline = build_pipeline(settings.model, seed=1, schema=_schema())
    encoder = pipeline.named_steps["prep"].transformers[1][1].named_steps["encode"]
    assert isinstance(encoder, OrdinalEncoder)
    assert pipeline.named_steps["clf"].categorical_features == [2]


def test_a_classifier_without_probabilities_names_the_fix() -> None:
    settings = load_settings(overrides=["model.class=sklearn.svm.SVC"])
    with pytest.raises(ConfigError, match=r"no class probabilities \(set model.params.probability"):
        build_pipeline(settings.model, seed=1)


def test_linear_svc_is_refused_with_the_option_that_wraps_it() -> None:
    refused = load_settings(overrides=["model.class=sklearn.svm.LinearSVC"])
    with pytest.raises(ConfigError, match=r"set model.calibrated=sigmoid to wrap it"):
        build_pipeline(refused.model, seed=1)
    settings = load_settings(
        overrides=[
            "model.class=sklearn.svm.LinearSVC",
            "model.params.C=0.5",
            "model.calibrated=sigmoid",
        ]
    )
    clf = build_pipeline(settings.model, seed=3).steps[-1][1]
    assert type(clf).__name__ == "CalibratedClassifierCV"
    assert (clf.method, clf.estimator.C, clf.estimator.random_state) == ("sigmoid", 0.5, 3)
    assert classifier(build_pipeline(settings.model, seed=3)).C == 0.5
