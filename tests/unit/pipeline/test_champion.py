"""The gate's comparison point: the champion measured on the same test rows."""

from __future__ import annotations

from dataclasses import replace

from petalops.config import DataSettings, Settings
from petalops.data.load import load_dataset
from petalops.pipeline.champion import NO_CHAMPION, find_champion
from petalops.pipeline.split import split
from petalops.registry import load_runtime
from petalops.registry.store import get_run, get_version

DATA = load_dataset(DataSettings())


def test_no_champion_in_an_empty_registry(empty_settings: Settings) -> None:
    assert find_champion(empty_settings, DATA, split(empty_settings, DATA)) == NO_CHAMPION


def test_the_champion_is_scored_on_this_runs_test_rows(trained_settings: Settings) -> None:
    rows = split(trained_settings, DATA)
    champion = find_champion(trained_settings, DATA, rows)
    runtime = load_runtime(trained_settings, "iris/1")
    assert champion.version == "1"
    assert champion.accuracy == float((runtime.predict(rows.x_test) == rows.y_test).mean())


def test_another_schema_falls_back_to_the_recorded_accuracy(trained_settings: Settings) -> None:
    renamed = replace(DATA, features=["a", "b", "c", "d"])
    champion = find_champion(trained_settings, renamed, split(trained_settings, renamed))
    recorded = get_run(trained_settings, get_version(trained_settings, "1").run_id).metrics
    assert (champion.version, champion.accuracy) == ("1", recorded["accuracy"])
