"""The register step: a version for a gated run, champion first, challenger after."""

from __future__ import annotations

import json

from petalops.config import Settings
from petalops.pipeline.load import load
from petalops.pipeline.register import (
    ROLLOUT_PLAN_TAG,
    find_registered,
    register_model,
    running_rollout,
)
from petalops.registry.store import (
    alias_version,
    client,
    delete_alias,
    get_version,
    list_versions,
    set_model_tag,
)


def _model_uri(settings: Settings, version: str) -> str:
    return str(client(settings).get_model_version("iris", version).source)


def test_a_version_is_found_by_its_train_key(trained_settings: Settings) -> None:
    first = get_version(trained_settings, "1")
    assert find_registered(trained_settings, first.tags["petalops.train_key"]) == (
        "1",
        first.run_id,
    )
    assert find_registered(trained_settings, "0" * 64) is None


def test_with_a_champion_the_new_version_is_challenger(trained_settings: Settings) -> None:
    data = load(trained_settings)
    first = get_version(trained_settings, "1")
    version, alias = register_model(
        trained_settings,
        data,
        model_uri=_model_uri(trained_settings, "1"),
        run_id=first.run_id,
        digest=first.sha256,
        accuracy=0.9666666,
        champion_version="1",
    )
    assert (version, alias) == ("3", "challenger")
    assert alias_version(trained_settings, "challenger") == "3"
    assert alias_version(trained_settings, "champion") == "1"
    tags = get_version(trained_settings, "3").tags
    assert tags["petalops.train_key"] == data.key
    assert tags["petalops.data_sha256"] == data.sha256
    assert tags["petalops.accuracy"] == "0.966667"
    assert tags["petalops.gate"] == "passed"
    assert tags["petalops.sha256"] == first.sha256


def test_without_a_champion_the_new_version_is_champion(trained_settings: Settings) -> None:
    first = get_version(trained_settings, "1")
    delete_alias(trained_settings, "champion")
    version, alias = register_model(
        trained_settings,
        load(trained_settings),
        model_uri=_model_uri(trained_settings, "1"),
        run_id=first.run_id,
        digest=first.sha256,
        accuracy=1.0,
        champion_version=None,
    )
    assert alias == "champion"
    assert alias_version(trained_settings, "champion") == version
    assert list_versions(trained_settings)[0].version == version  # the newest


def test_a_champion_taken_since_the_gate_looked_is_kept(trained_settings: Settings) -> None:
    # A concurrent first train registered v1 as champion after this one's gate saw none.
    first = get_version(trained_settings, "1")
    version, alias = register_model(
        trained_settings,
        load(trained_settings),
        model_uri=_model_uri(trained_settings, "1"),
        run_id=first.run_id,
        digest=first.sha256,
        accuracy=1.0,
        champion_version=None,
    )
    assert alias == "challenger"
    assert alias_version(trained_settings, "champion") == "1"
    assert alias_version(trained_settings, "challenger") == version


def test_while_a_rollout_runs_the_new_version_gets_no_alias(trained_settings: Settings) -> None:
    plan = {"rollout_id": "r1", "version": "2", "phase": "running", "ended": 0.0}
    set_model_tag(trained_settings, ROLLOUT_PLAN_TAG, json.dumps(plan))
    assert running_rollout(trained_settings) == "r1 (version 2)"
    first = get_version(trained_settings, "1")
    version, alias = register_model(
        trained_settings,
        load(trained_settings),
        model_uri=_model_uri(trained_settings, "1"),
        run_id=first.run_id,
        digest=first.sha256,
        accuracy=1.0,
        champion_version="1",
    )
    assert (version, alias) == ("3", "")
    assert alias_version(trained_settings, "challenger") == "2"
    set_model_tag(trained_settings, ROLLOUT_PLAN_TAG, json.dumps({**plan, "ended": 5.0}))
    assert running_rollout(trained_settings) is None
