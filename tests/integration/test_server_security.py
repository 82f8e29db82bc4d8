"""A real `petalops serve` over HTTPS with scoped API keys: 401/403/429 as JSON, per-key
metrics, and a revoked key refused by every worker within a reconcile interval.

The certificate is self-signed, made at test time with the `cryptography` package; the
keys are made and revoked with the `petalops keys` commands, as a user would.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests.utils.server_process import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROW = {"features": [6.7, 3.0, 5.2, 2.3]}
RECONCILE = 1.0


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "petalops test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def petalops(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PETALOPS_HOME": str(home), "PETALOPS_ACTOR": "alice@test"}
    return subprocess.run(
        [sys.executable, "-m", "petalops", *args],
        env=env,
        cwd=home.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def create_key(home: Path, *args: str) -> str:
    done = petalops(home, "keys", "create", *args)
    assert done.returncode == 0, done.stderr
    assert "shown once" in done.stderr
    return done.stdout.strip()


def test_https_keys_rate_limits_and_revocation_on_a_real_server(
    _session_stores: dict[str, Path], tmp_path: Path
) -> None:
    home = tmp_path / ".petalops"
    shutil.copytree(_session_stores["trained"], home, ignore=shutil.ignore_patterns("cache"))
    shop = create_key(home, "--scope", "predict", "--name", "shop")
    limited = create_key(home, "--scope", "predict", "--name", "batch-job", "--rate", "3/s")
    ops = create_key(home, "--scope", "admin", "--name", "ops")

    cert, key = self_signed(tmp_path)
    server = ServerProcess(
        home,
        workers=2,
        reconcile_seconds=RECONCILE,
        extra_args=["--tls-cert", str(cert), "--tls-key", str(key)],
        ca=cert,
    )
    try:
        server.wait_until("/readyz")
        assert "on https://127.0.0.1" in server.output()
        with pytest.raises(httpx.HTTPError):  # plain HTTP to the TLS port gets no answer
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        with server.client(timeout=10) as client:
            # No key, a malformed header, a wrong key: JSON 401 naming the header.
            for headers in ({}, {"Authorization": "Token x"}, {"X-API-Key": "po_1_2"}):
                answer = client.post("/predict", json=ROW, headers=headers)
                assert answer.status_code == 401, answer.text
                assert answer.json()["field"] == "Authorization"
            assert client.post("/predict", json=ROW, headers={"X-API-Key": shop}).status_code == 200
            bearer = {"Authorization": f"Bearer {shop}"}
            assert client.post("/v1/predict", json=ROW, headers=bearer).status_code in (200, 400)
            # A predict key on an admin route: 403; the admin key sees both workers' keys.
            assert client.get("/admin/status", headers=bearer).status_code == 403
            # Past its rate (3/s per worker, two workers): 429 with Retry-After.
            statuses = []
            for _ in range(20):
                answer = client.post("/predict", json=ROW, headers={"X-API-Key": limited})
                statuses.append(answer.status_code)
                if answer.status_code == 429:
                    assert int(answer.headers["retry-after"]) >= 1
                    assert "per worker" in answer.json()["error"]
            assert 200 in statuses and 429 in statuses, statuses
            metrics = client.get("/metrics").text
            assert (
                'petalops_api_key_requests_total{key="batch-job",outcome="rate_limited"}' in metrics
            )
            assert limited.split("_", 2)[2] not in metrics

        revoked = petalops(home, "keys", "revoke", "shop")
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        # Every worker refuses it after one reconcile interval: each one's /admin/status
        # (asked on fresh connections until both pids answered) no longer lists it.
        deadline = time.monotonic() + 20 * RECONCILE
        caught_up: dict[int, bool] = {}
        while len(caught_up) < 2 or not all(caught_up.values()):
            assert time.monotonic() < deadline, f"workers still accept the key: {caught_up}"
            with server.client(timeout=10) as fresh:  # a new connection: any worker
                status = fresh.get("/admin/status", headers={"X-API-Key": ops}).json()
            caught_up[status["pid"]] = "shop" not in status["api_keys"]["active"]
            time.sleep(0.05)
        for _ in range(10):
            with server.client(timeout=10) as fresh:
                answer = fresh.post("/predict", json=ROW, headers={"X-API-Key": shop})
            assert answer.status_code == 401 and "revoked" in answer.json()["error"]
        with server.client(timeout=10) as client:
            trail = client.get("/admin/audit", headers={"Authorization": f"Bearer {ops}"})
        assert trail.status_code == 200
    finally:
        server.stop()

    events = json.loads(petalops(home, "audit", "--json", "--action", "key").stdout)
    assert [(e["action"], e["target"]) for e in events][-1] == ("key.revoke", "shop")
    assert {e["actor"] for e in events} == {"alice@test"}
    assert events[-1]["before"]["status"] == "active"
    assert events[-1]["after"]["status"] == "revoked"
    listed = json.loads(petalops(home, "keys", "list", "--json").stdout)
    assert {k["name"]: k["status"] for k in listed}["shop"] == "revoked"
    assert all("digest" not in k and "salt" not in k for k in listed)
