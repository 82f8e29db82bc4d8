from pathlib import Path

import pytest

from petalops.config import load_settings, parse_overrides
from petalops.errors import ConfigError


def test_iris_is_the_default_without_any_file() -> None:
    settings = load_settings()
    assert settings.project == "iris"
    assert settings.data.source == "sklearn:iris"
    assert settings.model.class_path == "sklearn.linear_model.LogisticRegression"
    assert settings.model.params == {"max_iter": 200}
    assert settings.tracking_uri.startswith("sqlite:///")
    assert settings.tracking_uri.endswith(".petalops/mlflow.db")


def test_precedence_file_then_env_then_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "petalops.yaml"
    config.write_text("seed: 1\ngate:\n  min_accuracy: 0.5\nmodel:\n  params:\n    C: 2.0\n")
    assert load_settings(config).seed == 1
    monkeypatch.setenv("PETALOPS_SEED", "2")
    monkeypatch.setenv("PETALOPS_GATE__MIN_ACCURACY", "0.6")
    settings = load_settings(config)
    assert (settings.seed, settings.gate.min_accuracy) == (2, 0.6)
    settings = load_settings(config, ["seed=3", "model.params.max_iter=50"])
    assert settings.seed == 3
    assert settings.model.params == {"C": 2.0, "max_iter": 50}


def test_set_merges_into_defaults() -> None:
    settings = load_settings(overrides=["model.params.C=0.5"])
    assert settings.model.params == {"max_iter": 200, "C": 0.5}


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("gate.min_accuracy=2", "gate.min_accuracy=2"),
        ("split.test_size=abc", "example: split.test_size=0.2"),
        ("bogus=1", "unknown setting 'bogus'"),
        ("noequals", "is not KEY=VALUE"),
    ],
)
def test_bad_override_names_key_value_and_example(override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(overrides=[override])
    assert needle in info.value.message
    assert "\n" not in info.value.message


def test_bad_env_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PETALOPS_GATE__MIN_ACCURACY", "high")
    with pytest.raises(
        ConfigError, match=r"gate.min_accuracy='high'.*example: gate.min_accuracy=0.9"
    ):
        load_settings()


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gate: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_parse_overrides_types() -> None:
    assert parse_overrides(["a.b=1", "a.c=true", "d=x"]) == {"a": {"b": 1, "c": True}, "d": "x"}


def test_another_model_class_starts_from_its_own_defaults(tmp_path: Path) -> None:
    forest = "sklearn.ensemble.RandomForestClassifier"
    settings = load_settings(overrides=[f"model.class={forest}"])
    assert (settings.model.class_path, settings.model.params) == (forest, {})
    settings = load_settings(overrides=[f"model.class={forest}", "model.params.n_estimators=50"])
    assert settings.model.params == {"n_estimators": 50}
    config = tmp_path / "petalops.yaml"
    config.write_text(f"model:\n  class: {forest}\n")
    assert load_settings(config).model.params == {}
    assert load_settings(config, ["model.params.n_estimators=50"]).model.params == {
        "n_estimators": 50
    }
    # The same class again keeps what the file gave it.
    config.write_text(f"model:\n  class: {forest}\n  params: {{max_depth: 3}}\n")
    assert load_settings(config, [f"model.class={forest}"]).model.params == {"max_depth": 3}


def test_a_file_of_your_own_infers_features_classes_and_drops_the_iris_examples(
    tmp_path: Path,
) -> None:
    config = tmp_path / "penguins.yaml"
    config.write_text("data:\n  source: penguins.csv\n  target: species\n")
    settings = load_settings(config)
    assert (settings.data.features, settings.data.classes) == (None, None)
    assert settings.gate.known_examples == []
    settings = load_settings(overrides=["data.source=penguins.csv"])
    assert (settings.data.features, settings.data.classes) == (None, None)
    assert settings.gate.known_examples == []
    assert len(load_settings().gate.known_examples) == 3
    kept = load_settings(overrides=["data.source=penguins.csv", "data.features=[a, b]"])
    assert kept.data.features == ["a", "b"]


def test_column_kinds_and_preprocessing_are_typed() -> None:
    settings = load_settings(
        overrides=[
            "data.columns.zip.kind=categorical",
            "data.columns.zip.allow_missing=false",
            "model.preprocess.unknown=error",
        ]
    )
    assert settings.data.columns["zip"].kind == "categorical"
    assert settings.data.columns["zip"].allow_missing is False
    assert settings.model.preprocess.unknown == "error"
    with pytest.raises(ConfigError, match=r"model.preprocess.unknown='maybe'"):
        load_settings(overrides=["model.preprocess.unknown=maybe"])
    with pytest.raises(ConfigError, match=r"data.columns.zip.kind"):
        load_settings(overrides=["data.columns.zip.kind=text"])


def test_another_class_on_the_command_line_drops_the_files_params(tmp_path: Path) -> None:
    path = tmp_path / "petalops.yaml"
    path.write_text(
        "model:\n  class: sklearn.ensemble.RandomForestClassifier\n  params: {n_estimators: 200}\n"
    )
    kept = load_settings(path, ["model.params.max_depth=3"])
    assert kept.model.params == {"n_estimators": 200, "max_depth": 3}
    other = load_settings(path, ["model.class=sklearn.svm.SVC"])
    assert other.model.params == {}


def test_signing_keys_come_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().signing.trusted_keys == []  # the local default: nothing trusted
    assert load_settings().signing.key_file is None
    config = tmp_path / "petalops.yaml"
    config.write_text("signing:\n  key_file: keys/signing.key\n  trusted_keys: [keys/a.pub]\n")
    settings = load_settings(config)
    assert settings.signing.key_file == Path("keys/signing.key")
    assert settings.signing.trusted_keys == [Path("keys/a.pub")]
    monkeypatch.setenv("PETALOPS_SIGNING__TRUSTED_KEYS", "/etc/petalops/keys, b.pub")
    monkeypatch.setenv("PETALOPS_SIGNING__KEY_FILE", "/run/secrets/signing.key")
    settings = load_settings(config)
    assert settings.signing.trusted_keys == [Path("/etc/petalops/keys"), Path("b.pub")]
    assert settings.signing.key_file == Path("/run/secrets/signing.key")
    monkeypatch.setenv("PETALOPS_SIGNING__TRUSTED_KEYS", '["c.pub", "d.pub"]')
    assert load_settings().signing.trusted_keys == [Path("c.pub"), Path("d.pub")]
