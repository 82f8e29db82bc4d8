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
