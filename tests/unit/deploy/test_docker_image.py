"""The image definition, checked offline at lint level: Dockerfile structure (multi-stage,
dependencies before code, non-root, health check, base image argument, no `# syntax=`),
.dockerignore, the entrypoint's roles, and the health-check and lease helpers it ships."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "deploy" / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
ENTRYPOINT = DOCKER / "entrypoint.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"petalops_deploy_{name}", DOCKER / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_syntax_directive_and_base_image_is_an_argument() -> None:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    assert not any(re.match(r"#\s*syntax\s*=", line, re.IGNORECASE) for line in lines)
    parsed = instructions()
    assert parsed[0] == ("ARG", "BASE_IMAGE=python:3.12-slim")
    names: set[str] = set()
    for keyword, rest in parsed:
        if keyword == "FROM":
            image, *alias = rest.split()
            assert image == "${BASE_IMAGE}" or image in names, f"FROM {image} pulls an image"
            if alias:
                assert alias[0].upper() == "AS"
                names.add(alias[1])


def stage(name: str) -> list[tuple[str, str]]:
    """The instructions of a named stage, after those of the stage it is built FROM."""
    for built in stages():
        image, *alias = built[0][1].split()
        if alias and alias[-1] == name:
            parent = stage(image) if image != "${BASE_IMAGE}" else []
            return parent + built[1:]
    raise AssertionError(f"no stage {name!r}")


def test_multi_stage_with_dependencies_installed_before_the_code_is_copied() -> None:
    assert len(stages()) >= 3
    flat = instructions()
    first_install = next(i for i, (k, r) in enumerate(flat) if k == "RUN" and "slim-venv.sh" in r)
    manifests = next(i for i, (k, r) in enumerate(flat) if k == "COPY" and "pyproject.toml" in r)
    code = next(i for i, (k, r) in enumerate(flat) if k == "COPY" and re.search(r"\bsrc\b|^\. ", r))
    assert manifests < first_install < code
    script = (DOCKER / "slim-venv.sh").read_text(encoding="utf-8")
    assert '-c "$constraints" -r "$req"' in script
    subprocess.run([shutil.which("sh") or "sh", "-n", str(DOCKER / "slim-venv.sh")], check=True)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()  # PEP 503


def test_default_target_is_the_full_image_and_serve_is_a_target() -> None:
    assert stages()[-1] == [("FROM", "full")]
    serve_deps = " ".join(r for k, r in stage("deps-serve") if k == "RUN")
    assert "requirements-serve.txt" in serve_deps
    listed = {
        normalize(re.split(r"[\[<>=]", line)[0])
        for line in (DOCKER / "requirements-serve.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert not listed & {"mlflow", "pandas", "pyarrow", "scikit-learn", "matplotlib", "skl2onnx"}
    assert {"numpy", "onnxruntime", "fastapi", "uvicorn", "sqlalchemy"} <= listed
    # Every name is pinned by constraints.txt, so both images get the versions the tests ran.
    pinned = {
        normalize(line.split("==")[0])
        for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line
    }
    assert listed <= pinned, listed - pinned


@pytest.mark.parametrize("target", ["full", "serve"])
def test_both_images_are_non_root_healthy_and_serve_on_port_5000(target: str) -> None:
    runtime = stage(target)
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert runtime[-1][0] == "USER", "the image must end as the non-root user"
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "PORT=5000" in env
    assert "HOST=0.0.0.0" in env
    assert "PETALOPS_HOME=/var/lib/petalops" in env
    assert ("EXPOSE", "5000") in runtime
    health = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    assert len(health) == 1
    assert "healthcheck.py" in health[0]
    assert '"/readyz"' in (DOCKER / "healthcheck.py").read_text(encoding="utf-8")
    entrypoint = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint[0]) == ["/bin/sh", "/opt/petalops/entrypoint.sh"]
    assert json.loads(next(rest for keyword, rest in runtime if keyword == "CMD")) == ["serve"]
    # The baked store ends up owned by the non-root user, in both images.
    owned = " ".join(r for k, r in runtime if k in ("RUN", "COPY"))
    assert "chown -R 10001:10001 /var/lib/petalops /opt/petalops/seed" in owned or (
        "--chown=10001:10001 /var/lib/petalops" in owned
    )


def test_full_image_trains_the_champion_at_build_time() -> None:
    full = stage("full")
    train = next(rest for keyword, rest in full if keyword == "RUN" and "petalops train" in rest)
    assert "cp -a /var/lib/petalops/. /opt/petalops/seed/" in train
    assert full.index(("RUN", train)) < len(full) - 1


def test_dockerignore_lets_in_only_what_the_build_needs() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "constraints.txt", "README.md", "src", "deploy/docker"}
    for _, rest in instructions():
        for source in re.findall(r"\bdeploy/docker/[\w.-]+", rest):
            assert (ROOT / source).exists(), source


def test_entrypoint_is_valid_sh_and_runs_one_role_per_container() -> None:
    text = ENTRYPOINT.read_text(encoding="utf-8")
    sh = shutil.which("sh")
    assert sh
    subprocess.run([sh, "-n", str(ENTRYPOINT)], check=True)
    for role, command in (
        ("serve", 'exec petalops serve --host "$HOST" --port "$PORT"'),
        ("mlflow", "exec mlflow server"),
        ("rollout", "exec petalops rollout run"),
        ("monitor", "exec petalops monitor watch"),
        ("train", "exec petalops train"),
    ):
        assert re.search(rf"^\s+{role}\)", text, re.MULTILINE), role
        assert command in text, command
    assert "role=${1:-serve}" in text


@pytest.fixture
def fake_petalops(tmp_path: Path) -> Path:
    """`petalops`, `mlflow` and `python3` on PATH that print their arguments instead of running."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("petalops", "mlflow", "python3"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho {name} "$@"\n', encoding="utf-8")
        script.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ([], {}, "petalops serve --host 0.0.0.0 --port 5000 --workers 1"),
        (["serve"], {"HOST": "127.0.0.1", "PORT": "18080"}, "--host 127.0.0.1 --port 18080"),
        (["rollout"], {}, "petalops rollout run"),
        (["monitor", "--once"], {}, "petalops monitor watch --once"),
        (["mlflow", "server"], {"PORT": "5001"}, "mlflow server --host 0.0.0.0 --port 5001"),
        (["petalops", "registry", "list"], {}, "petalops registry list"),
        (
            ["rollout"],
            {"PETALOPS_LEASE_NAME": "petalops-rollout"},
            "python3 /opt/petalops/lease.py -- petalops rollout run",
        ),
        (
            ["monitor"],
            {"PETALOPS_LEASE_NAME": "petalops-monitor"},
            "python3 /opt/petalops/lease.py -- petalops monitor watch",
        ),
    ],
)
def test_entrypoint_dispatches_each_role(
    fake_petalops: Path, tmp_path: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    environ = {"PATH": f"{fake_petalops}:/usr/bin:/bin", "PETALOPS_HOME": str(tmp_path), **env}
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    assert expected in result.stdout


def test_healthcheck_probes_the_right_endpoint_for_each_role() -> None:
    health = load("healthcheck")
    assert health.role_of(["/opt/venv/bin/python3", "/opt/venv/bin/petalops", "serve"]) == "serve"
    assert health.role_of(["python3", "/opt/venv/bin/mlflow", "server", "--port", "5000"]) == (
        "mlflow"
    )
    assert health.role_of(["python3", "/opt/venv/bin/petalops", "rollout", "run"]) == "worker"
    assert health.url_for("serve", {}) == "http://127.0.0.1:5000/readyz"
    assert health.url_for("serve", {"HOST": "127.0.0.1", "PORT": "18081"}) == (
        "http://127.0.0.1:18081/readyz"
    )
    assert health.url_for("mlflow", {"PORT": "5001"}) == "http://127.0.0.1:5001/health"


class FakeLeaseApi:
    """An in-memory stand-in for the API server's Lease endpoints (resourceVersion checks)."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def call(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        import io
        import urllib.error

        def error(code: int) -> urllib.error.HTTPError:
            return urllib.error.HTTPError(url, code, "x", {}, io.BytesIO(b"{}"))  # type: ignore[arg-type]

        if method == "GET":
            if self.lease is None:
                raise error(404)
            return json.loads(json.dumps(self.lease))
        assert body is not None
        if method == "POST":
            if self.lease is not None:
                raise error(409)
        elif body["metadata"].get("resourceVersion") != str(self.version):
            raise error(409)
        self.version += 1
        body["metadata"]["resourceVersion"] = str(self.version)
        self.lease = body
        return body


def test_lease_lets_one_holder_act_and_a_standby_take_over_after_release() -> None:
    lease = load("lease")
    api = FakeLeaseApi()

    def client(identity: str) -> Any:
        made = lease.LeaseClient.__new__(lease.LeaseClient)
        made.base, made.name, made.namespace = "https://k/leases", "petalops-rollout", "ns"
        made.identity, made.duration = identity, 15
        made._call = api.call
        return made

    first, second = client("pod-a"), client("pod-b")
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.try_acquire()  # renewal
    assert api.lease is not None
    assert api.lease["spec"]["holderIdentity"] == "pod-a"
    first.release()
    assert second.try_acquire()
    assert api.lease["spec"]["holderIdentity"] == "pod-b"
    api.lease["spec"]["renewTime"] = "2000-01-01T00:00:00.000000Z"  # pod-b died long ago
    assert first.try_acquire()
    assert lease.parse_micro(lease.now_micro()) > 0


@pytest.mark.parametrize("target", ["full", "serve"])
def test_both_images_ship_the_sbom_of_their_installed_packages(target: str) -> None:
    from petalops.sbom import SBOM_FILE

    runs = [r for k, r in stage(target) if k == "RUN"]
    wheel = next(i for i, r in enumerate(runs) if "/tmp/wheels/*.whl" in r)
    sbom = next(i for i, r in enumerate(runs) if "sbom.sh" in r)
    assert wheel <= sbom, "the SBOM must list the petalops wheel too"
    assert "constraints.txt" in runs[sbom]
    script = (DOCKER / "sbom.sh").read_text(encoding="utf-8")
    assert f"--output-file {SBOM_FILE} /opt/venv/bin/python" in script
    assert '-c "$constraints" cyclonedx-bom' in script
    assert "rm -rf /tmp/sbom-tool" in script  # the tool is not left in the image
    subprocess.run([shutil.which("sh") or "sh", "-n", str(DOCKER / "sbom.sh")], check=True)
    pinned = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("cyclonedx-bom==") for line in pinned)
