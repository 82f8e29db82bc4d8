"""The compose stack, checked offline: it parses, required variables fail loudly with
`${VAR:?}`, every serving replica has a health check, sits behind the load balancer (which
retries a failed upstream) and is scraped by Prometheus, and every mounted file exists."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
NGINX = COMPOSE_DIR / "nginx.conf"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "petalops.json"
DATASOURCE = COMPOSE_DIR / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
REQUIRED = {"POSTGRES_PASSWORD", "PETALOPS_ADMIN_TOKEN", "GRAFANA_ADMIN_PASSWORD"}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?])?([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def replicas(compose: dict[str, Any]) -> dict[str, Any]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("command") == ["serve"]
    }


def test_every_variable_is_required_or_has_a_default() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    found = VARIABLE.findall(text)
    assert found
    for name, operator, _rest in found:
        assert operator in (":-", ":?"), f"${{{name}}} needs a default (:-) or :? message"
        if name in REQUIRED:
            assert operator == ":?", f"{name} is a secret: it must be required with :?"
    assert {name for name, _, _ in found} >= REQUIRED
    assert "$" not in re.sub(r"\$\$|" + VARIABLE.pattern, "", text), "a bare $VAR"


def test_example_env_file_names_every_required_variable() -> None:
    example = (COMPOSE_DIR / ".env.example").read_text(encoding="utf-8")
    for name in REQUIRED:
        assert re.search(rf"^{name}=", example, re.MULTILINE), name


def test_at_least_two_healthy_replicas_serve_on_the_image_port(compose: dict[str, Any]) -> None:
    found = replicas(compose)
    assert len(found) >= 2
    for name, service in found.items():
        assert service["image"].startswith("petalops:"), name
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile"
        assert (COMPOSE_DIR / service["build"]["context"] / "deploy/docker/Dockerfile").exists()
        assert "healthcheck.py" in " ".join(service["healthcheck"]["test"]), name
        env = service["environment"]
        assert env["PETALOPS_MLFLOW_URI"] == "http://mlflow:5000"
        assert env["PORT"] == "5000"
        assert service["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"


def test_load_balancer_fronts_every_replica_and_retries_a_failed_one(
    compose: dict[str, Any],
) -> None:
    conf = NGINX.read_text(encoding="utf-8")
    upstream = re.search(r"upstream\s+petalops\s*\{(.*?)\}", conf, re.DOTALL)
    assert upstream
    servers = set(re.findall(r"server\s+([\w.-]+):5000", upstream.group(1)))
    assert servers == set(replicas(compose))
    retry = re.search(r"proxy_next_upstream\s+([^;]+);", conf)
    assert retry
    assert {"error", "timeout", "http_502", "http_503"} <= set(retry.group(1).split())
    assert "proxy_pass http://petalops;" in conf
    assert conf.count("{") == conf.count("}")
    lb = compose["services"]["lb"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in lb["volumes"]
    assert lb["ports"] == ["${PETALOPS_BIND:-127.0.0.1}:${PETALOPS_PORT:-5000}:80"]
    for name in replicas(compose):
        assert lb["depends_on"][name]["condition"] == "service_healthy"


def test_prometheus_scrapes_every_replica_with_the_alert_rules(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "petalops")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:5000" for name in replicas(compose)}
    assert job["metrics_path"] == "/metrics"
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts


def test_every_service_role_is_present(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["mlflow"]["command"] == ["mlflow", "server"]
    assert "postgresql://" in services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["rollout"]["command"] == ["rollout"]
    assert services["monitor"]["command"] == ["monitor"]
    assert services["bootstrap"]["command"][0] == "train"
    for name in ("postgres", "mlflow", "lb", "prometheus", "grafana"):
        assert "healthcheck" in services[name], name


def test_bind_mounts_point_at_files_in_the_repository(compose: dict[str, Any]) -> None:
    missing = []
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")) and not (COMPOSE_DIR / source).exists():
                missing.append(f"{name}: {source}")
    assert not missing, f"mounted but missing: {missing}"


def test_grafana_is_provisioned_with_the_datasource_the_dashboard_uses() -> None:
    datasource = yaml.safe_load(DATASOURCE.read_text(encoding="utf-8"))["datasources"][0]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    uids = set(re.findall(r'"uid":\s*"([^"$]+)"', json.dumps(dashboard.get("panels", []))))
    datasource_uids = {
        ref["uid"]
        for ref in _datasource_refs(dashboard.get("panels", []))
        if isinstance(ref, dict) and ref.get("type") == "prometheus" and "$" not in ref["uid"]
    }
    assert datasource_uids <= {datasource["uid"]}, (uids, datasource_uids)


def _datasource_refs(node: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(node, dict):
        if isinstance(node.get("datasource"), dict) and "uid" in node["datasource"]:
            found.append(node["datasource"])
        for value in node.values():
            found.extend(_datasource_refs(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_datasource_refs(value))
    return found


def test_replicas_run_the_serve_only_image_and_the_rest_the_full_one(
    compose: dict[str, Any],
) -> None:
    for name, service in replicas(compose).items():
        assert service["build"]["target"] == "serve", name
        assert service["image"].endswith("-serve"), name
    for name in ("mlflow", "bootstrap", "rollout", "monitor"):
        service = compose["services"][name]
        assert "target" not in service["build"], name
        assert not service["image"].endswith("-serve"), name
