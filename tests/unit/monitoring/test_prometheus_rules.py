"""deploy/prometheus/alerts.yml: valid for promtool, and each alert fires (only) when it should.

Needs `promtool` (Debian: `apt-get install prometheus`; .ci/run installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from petalops.monitoring import alerts

RULES = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found on PATH; install Debian's prometheus package "
    "(apt-get install -y prometheus) to check deploy/prometheus/alerts.yml",
)
REQ = (
    'petalops_requests_total{{route="/v1/predict",status="{status}",model_version="1",'
    'variant="champion"}}'
)
DURATION = (
    'petalops_request_duration_seconds_bucket{{route="/v1/predict",model_version="1",'
    'variant="champion",le="{le}"}}'
)


def rules() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return {r["alert"]: r for g in data["groups"] for r in g["rules"] if "alert" in r}


def expect(name: str, labels: dict[str, str], summary: str) -> dict[str, Any]:
    rule = rules()[name]
    annotations = {"summary": summary}
    if "description" in rule["annotations"]:
        annotations["description"] = rule["annotations"]["description"]
    return {
        "exp_labels": {**labels, "severity": rule["labels"]["severity"]},
        "exp_annotations": annotations,
    }


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)


def test_alert_names_match_monitor_watch() -> None:
    names = set(rules())
    assert {
        alerts.HIGH_ERROR_RATE,
        alerts.HIGH_LATENCY,
        alerts.DATASET_DRIFT,
        alerts.ACCURACY_DROP,
        alerts.LOG_DROPS,
        alerts.NO_MODEL_READY,
        alerts.ESTIMATED_ACCURACY_DROP,
        alerts.DATA_QUALITY,
    } <= names


@needs_promtool
def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_alerts_fire_on_synthetic_series(tmp_path: Path) -> None:
    healthy = [
        {"series": REQ.format(status="200"), "values": "0+600x40"},
        {"series": "petalops_model_ready", "values": "1x40"},
    ]
    fast = [
        {"series": DURATION.format(le=le), "values": f"0+{n}x40"}
        for le, n in (("0.005", 590), ("0.05", 600), ("0.25", 600), ("+Inf", 600))
    ]
    slow = [
        {"series": DURATION.format(le=le), "values": f"0+{n}x40"}
        for le, n in (("0.005", 100), ("0.05", 300), ("0.25", 500), ("1", 600), ("+Inf", 600))
    ]
    tests = [
        {  # everything healthy: no alert at all
            "interval": "1m",
            "input_series": [
                *healthy,
                *fast,
                {"series": "petalops_dataset_drift", "values": "0x40"},
                {
                    "series": 'petalops_live_accuracy{model_version="1",variant="champion"}',
                    "values": "0.97x40",
                },
                {"series": "petalops_prediction_log_dropped_total", "values": "0x40"},
            ],
            "alert_rule_test": [
                {"eval_time": "30m", "alertname": name, "exp_alerts": []} for name in rules()
            ],
        },
        {
            "interval": "1m",
            "input_series": [
                *healthy,
                *slow,
                {"series": REQ.format(status="500"), "values": "0+100x40"},
                {"series": "petalops_dataset_drift", "values": "0x5 1x35"},
                {"series": 'petalops_feature_drift{feature="petal_length"}', "values": "1x40"},
                {
                    "series": 'petalops_live_accuracy{model_version="1",variant="champion"}',
                    "values": "0.97x5 0.70x35",
                },
                {
                    "series": 'petalops_live_accuracy{model_version="2",variant="shadow"}',
                    "values": "0.10x40",
                },
                {"series": "petalops_prediction_log_dropped_total", "values": "0x20 0+50x20"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": "30m",
                    "alertname": "PetalopsHighErrorRate",
                    "exp_alerts": [
                        expect(
                            "PetalopsHighErrorRate",
                            {"model_version": "1", "variant": "champion"},
                            "champion v1: 14.29% of requests fail (5xx)",
                        )
                    ],
                },
                {
                    "eval_time": "30m",
                    "alertname": "PetalopsHighLatencyP99",
                    "exp_alerts": [
                        expect(
                            "PetalopsHighLatencyP99",
                            {"model_version": "1", "variant": "champion"},
                            "champion v1: p99 latency 955ms",
                        )
                    ],
                },
                {"eval_time": "10m", "alertname": "PetalopsDatasetDrift", "exp_alerts": []},
                {
                    "eval_time": "30m",
                    "alertname": "PetalopsDatasetDrift",
                    "exp_alerts": [
                        expect(
                            "PetalopsDatasetDrift",
                            {},
                            "Live traffic drifted from the reference profile of the champion",
                        )
                    ],
                },
                {
                    "eval_time": "35m",
                    "alertname": "PetalopsFeatureDrift",
                    "exp_alerts": [
                        expect(
                            "PetalopsFeatureDrift",
                            {"feature": "petal_length"},
                            "Feature petal_length drifted from the reference profile",
                        )
                    ],
                },
                {
                    "eval_time": "30m",
                    "alertname": "PetalopsAccuracyDrop",
                    "exp_alerts": [
                        expect(
                            "PetalopsAccuracyDrop",
                            {"model_version": "1", "variant": "champion"},
                            "champion v1: live accuracy 0.700",
                        )
                    ],
                },
                {"eval_time": "15m", "alertname": "PetalopsPredictionLogDrops", "exp_alerts": []},
                {
                    "eval_time": "30m",
                    "alertname": "PetalopsPredictionLogDrops",
                    "exp_alerts": [
                        expect(
                            "PetalopsPredictionLogDrops",
                            {},
                            "The prediction log dropped 250 rows in 5 minutes",
                        )
                    ],
                },
            ],
        },
        {
            "interval": "1m",
            "input_series": [{"series": "petalops_model_ready", "values": "1x3 0x20"}],
            "alert_rule_test": [
                {"eval_time": "4m", "alertname": "PetalopsModelNotReady", "exp_alerts": []},
                {
                    "eval_time": "10m",
                    "alertname": "PetalopsModelNotReady",
                    "exp_alerts": [
                        expect("PetalopsModelNotReady", {}, "No petalops worker has a model ready")
                    ],
                },
            ],
        },
    ]
    spec = tmp_path / "alerts_test.yml"
    spec.write_text(
        yaml.safe_dump(
            {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests},
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    result = promtool("test", "rules", str(spec))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_estimated_accuracy_and_data_quality_alerts_fire(tmp_path: Path) -> None:
    quality = 'petalops_data_quality_failed{model_version="2",feature="petal_length",check="%s"}'
    tests = [
        {
            "interval": "1m",
            "input_series": [
                {"series": 'petalops_estimated_accuracy{model_version="1"}', "values": "0.95x40"},
                {
                    "series": 'petalops_estimated_accuracy{model_version="2"}',
                    "values": "0.95x5 0.62x35",
                },
                {"series": quality % "out_of_range", "values": "0x5 1x35"},
                {"series": quality % "missing", "values": "0x40"},
            ],
            "alert_rule_test": [
                {
                    "eval_time": "12m",
                    "alertname": "PetalopsEstimatedAccuracyDrop",
                    "exp_alerts": [],
                },
                {
                    "eval_time": "30m",
                    "alertname": "PetalopsEstimatedAccuracyDrop",
                    "exp_alerts": [
                        expect(
                            "PetalopsEstimatedAccuracyDrop",
                            {"model_version": "2"},
                            "v2: estimated accuracy 0.620",
                        )
                    ],
                },
                {
                    "eval_time": "30m",
                    "alertname": "PetalopsDataQuality",
                    "exp_alerts": [
                        expect(
                            "PetalopsDataQuality",
                            {
                                "model_version": "2",
                                "feature": "petal_length",
                                "check": "out_of_range",
                            },
                            "v2: data-quality check out_of_range failed on petal_length",
                        )
                    ],
                },
            ],
        }
    ]
    spec = tmp_path / "quality_test.yml"
    spec.write_text(
        yaml.safe_dump(
            {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests},
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    result = promtool("test", "rules", str(spec))
    assert result.returncode == 0, result.stdout + result.stderr
