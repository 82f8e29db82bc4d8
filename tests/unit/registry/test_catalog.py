"""The registry catalog read without MLflow, against a real embedded store of two versions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.errors import NotFoundError
from petalops.registry import store
from petalops.registry.catalog import gate_checks, read_catalog, registry_stamp
from petalops.registry.store import RunRecord

pytestmark = pytest.mark.slow  # a registry of two trained versions per test


def test_versions_newest_first_with_aliases_and_lineage(trained_settings: Settings) -> None:
    catalog = read_catalog(trained_settings)
    assert catalog.name == "iris"
    assert catalog.aliases == {"champion": "1", "challenger": "2"}
    assert [v.version for v in catalog.versions] == ["2", "1"]
    second, first = catalog.versions
    assert (first.aliases, second.aliases) == (["champion"], ["challenger"])
    for lineage in catalog.versions:
        assert len(lineage.sha256) == 64
        assert len(lineage.data_fingerprint) == 64
        assert lineage.gate == "passed"
        assert lineage.run is not None and 0.9 <= lineage.run.metrics["accuracy"] <= 1.0
        assert lineage.info.created > 1.7e9
    assert second.run is not None and first.run is not None
    assert second.run.params["model.params.C"] == "0.3"
    assert first.run.params.get("model.params.C") != "0.3"
    document = first.to_json()
    assert document["metrics"]["accuracy"] == first.run.metrics["accuracy"]
    assert document["data_rows"] == "150"


def test_the_same_facts_as_the_mlflow_client(trained_settings: Settings) -> None:
    fast = read_catalog(trained_settings)
    infos = store.list_versions(trained_settings)
    assert [v.version for v in fast.versions] == [i.version for i in infos]
    assert fast.aliases == {a: i.version for i in infos for a in i.aliases}
    assert fast.tags == store.model_tags(trained_settings)
    for lineage, info in zip(fast.versions, infos, strict=True):
        assert (lineage.aliases, lineage.sha256, lineage.info.tags) == (
            info.aliases,
            info.sha256,
            info.tags,
        )
        record = store.get_run(trained_settings, info.run_id)
        assert lineage.run is not None
        assert lineage.run.metrics == pytest.approx(record.metrics)
        assert (lineage.run.params, lineage.run.tags) == (record.params, record.tags)


def test_newest_limits_the_list_but_keeps_aliased_versions(trained_settings: Settings) -> None:
    catalog = read_catalog(trained_settings, newest=1)
    # v1 is older than the limit but is the champion.
    assert [v.version for v in catalog.versions] == ["2", "1"]
    from petalops.registry.store import delete_alias

    delete_alias(trained_settings, "champion")
    assert [v.version for v in read_catalog(trained_settings, newest=1).versions] == ["2"]


def test_run_data_is_read_once_per_run(trained_settings: Settings) -> None:
    runs: dict[str, RunRecord] = {}
    first = read_catalog(trained_settings, runs=runs)
    assert set(runs) == {v.run_id for v in first.versions}
    marker = RunRecord(run_id="x", params={}, metrics={"accuracy": -1.0}, tags={}, start_time=0)
    runs[first.versions[0].run_id] = marker
    assert read_catalog(trained_settings, runs=runs).versions[0].run is marker


def test_gate_checks_come_from_the_runs_gate_json(trained_settings: Settings) -> None:
    lineage = read_catalog(trained_settings).versions[-1]
    checks = gate_checks(trained_settings, lineage)
    assert {c["name"] for c in checks} >= {"min_accuracy", "known_examples"}
    assert all(c["passed"] for c in checks)


def test_a_missing_registry_names_the_fix(empty_settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="petalops train"):
        read_catalog(Settings(home=tmp_path / "nowhere"))
    catalog = read_catalog(empty_settings)  # migrated, nothing registered
    assert (catalog.aliases, catalog.versions) == ({}, [])


def test_reading_it_never_imports_mlflow(trained_settings: Settings) -> None:
    code = (
        "import sys, json\n"
        "from petalops.config import Settings\n"
        "from petalops.registry.catalog import read_catalog, gate_checks\n"
        f"s = Settings(home={str(trained_settings.home_dir)!r})\n"
        "c = read_catalog(s)\n"
        "print(json.dumps([len(c.versions), len(gate_checks(s, c.versions[0])),"
        " 'mlflow' in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    versions, checks, imported = json.loads(out.stdout)
    assert (versions, imported) == (2, False)
    assert checks > 0


def test_the_stamp_moves_with_every_registry_write(trained_settings: Settings) -> None:
    before = registry_stamp(trained_settings)
    assert before and registry_stamp(trained_settings) == before
    store.set_alias(trained_settings, "previous", "1")
    assert registry_stamp(trained_settings) != before
    assert registry_stamp(Settings(mlflow_uri="http://127.0.0.1:1")) is None
