"""deploy/grafana/petalops.json: valid, uses only the documented metric names, valid PromQL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "petalops.json"
INTERNALS = ROOT / "docs" / "internals.md"
METRIC = re.compile(r"\bpetalops_[a-z0-9_]+")


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def expressions() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def documented_metrics() -> set[str]:
    text = INTERNALS.read_text(encoding="utf-8")
    section = text.split("## Prometheus metrics", 1)[1]
    names = set(METRIC.findall(section))
    # "`petalops_prediction_log_written_total` / `_dropped_total`"
    names.add("petalops_prediction_log_dropped_total")
    return names


def test_dashboard_is_well_formed() -> None:
    data = dashboard()
    assert data["uid"] == "petalops"
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))
    for panel in data["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in data["templating"]["list"]}
    assert variables == {"datasource", "version", "variant"}


def test_only_documented_metrics_are_queried() -> None:
    documented = documented_metrics()
    used = set()
    for expr in expressions():
        for name in METRIC.findall(expr):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    assert used <= documented, used - documented


@pytest.mark.parametrize(
    "needed",
    [
        "petalops_requests_total",  # request rate and errors
        "petalops_request_duration_seconds_bucket",  # latency
        "petalops_drift_score",
        "petalops_feature_drift",
        "petalops_live_accuracy",
        "petalops_rollout_weight",
        "petalops_prediction_log_dropped_total",
    ],
)
def test_required_views_are_present(needed: str) -> None:
    assert any(needed in expr for expr in expressions())


def test_errors_and_latency_are_split_by_version_and_variant() -> None:
    by_both = [
        e
        for e in expressions()
        if "by (model_version, variant)" in e or "by (le, model_version, variant)" in e
    ]
    assert any('status=~"5.."' in e for e in by_both)
    assert any("request_duration_seconds_bucket" in e for e in by_both)
    assert any("rate(petalops_requests_total" in e and "5.." not in e for e in by_both)


@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not found on PATH; "
    "install Debian's prometheus package (apt-get install -y prometheus)",
)
def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": expr.replace("$__rate_interval", "5m")
            .replace("$version", ".*")
            .replace("$variant", ".*"),
        }
        for i, expr in enumerate(expressions())
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
