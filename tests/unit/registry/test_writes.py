"""Alias and tag writes without MLflow's client: what they write is what MLflow reads back,
and whatever they cannot take goes through the client."""

from __future__ import annotations

import json

import pytest

from petalops.config import Settings
from petalops.errors import NotFoundError
from petalops.registry import store, writes
from petalops.registry.resolve import model_state, resolve


def mlflow_view(settings: Settings) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Aliases, model tags and version 2's tags as the MLflow client reads them."""
    mlflow_client = store.client(settings)
    model = mlflow_client.get_registered_model(settings.project)
    aliases = {alias: str(version) for alias, version in model.aliases.items()}
    return aliases, dict(model.tags), dict(mlflow_client.get_model_version("iris", "2").tags)


def test_alias_and_tags_written_directly_are_what_mlflow_reads(
    trained_settings: Settings,
) -> None:
    store.set_alias(trained_settings, "previous", "2", actor="ops@example")
    store.set_model_tag(trained_settings, "petalops.traffic", '{"strategy": "canary"}')
    store.set_version_tag(trained_settings, "2", "team", "fraud")
    store.delete_alias(trained_settings, "challenger")

    aliases, model_tags, version_tags = mlflow_view(trained_settings)
    assert aliases == {"champion": "1", "previous": "2"}
    assert model_tags["petalops.traffic"] == '{"strategy": "canary"}'
    assert version_tags["team"] == "fraud"
    history = json.loads(version_tags[store.ALIAS_HISTORY_TAG])
    assert history[-1]["alias"] == "previous" and history[-1]["by"] == "ops@example"
    # Moving an alias replaces its row; setting a tag again replaces its value.
    store.set_alias(trained_settings, "previous", "1")
    store.set_model_tag(trained_settings, "petalops.traffic", "{}")
    assert model_state(trained_settings) == (
        {"champion": "1", "previous": "1"},
        {"petalops.traffic": "{}"},
    )


def test_champion_records_who_promoted_it(trained_settings: Settings) -> None:
    store.set_alias(trained_settings, "champion", "2", actor="ci@runner")
    info = resolve(trained_settings, "iris@champion")
    assert info.version == "2" and info.tags["petalops.promoted_by"] == "ci@runner"
    assert info.tags["petalops.promoted_at"].endswith("Z")


def test_missing_version_alias_or_model_is_not_found(trained_settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="has no version 9"):
        store.set_alias(trained_settings, "challenger", "9")
    with pytest.raises(NotFoundError, match="has no version 9"):
        store.set_version_tag(trained_settings, "9", "team", "fraud")
    with pytest.raises(NotFoundError, match="has no alias 'previous'"):
        store.delete_alias(trained_settings, "previous")
    with pytest.raises(NotFoundError, match="no registered model 'other'"):
        writes.set_model_tags(trained_settings, "other", {"k": "v"})
    assert mlflow_view(trained_settings)[0] == {"champion": "1", "challenger": "2"}


@pytest.mark.parametrize(
    ("alias", "tags", "direct"),
    [
        ("challenger", {"petalops.traffic": "{}"}, True),
        ("latest", None, False),  # reserved by MLflow
        ("v3", None, False),  # reserved by MLflow
        ("two words", None, False),
        (None, {"../up": "x"}, False),
        (None, {"petalops.plan": "x" * 5001}, False),  # over MLflow's tag value limit
    ],
)
def test_writes_take_only_what_mlflow_surely_accepts(
    alias: str | None, tags: dict[str, str] | None, direct: bool
) -> None:
    embedded = Settings(mlflow_uri="sqlite:////tmp/x.db")
    assert writes.accepts(embedded, "iris", alias=alias, tags=tags) is direct
    assert writes.accepts(Settings(mlflow_uri="http://mlflow:5000"), "iris", alias=alias) is (
        alias is None or direct
    )
    assert not writes.accepts(Settings(mlflow_uri="databricks"), "iris")


def test_a_schema_the_writes_do_not_know_goes_through_mlflow(
    trained_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unknown(*args: object, **kwargs: object) -> None:
        raise writes.UnknownSchema("table registered_model_aliases has no column named name")

    for name in ("set_alias", "set_model_tags", "set_version_tags", "delete_alias"):
        monkeypatch.setattr(writes, name, unknown)
    store.set_alias(trained_settings, "previous", "2")
    store.set_model_tag(trained_settings, "petalops.traffic", "{}")
    store.delete_alias(trained_settings, "challenger")
    aliases, model_tags, version_tags = mlflow_view(trained_settings)
    assert aliases == {"champion": "1", "previous": "2"}
    assert model_tags["petalops.traffic"] == "{}"
    assert json.loads(version_tags[store.ALIAS_HISTORY_TAG])[-1]["alias"] == "previous"
