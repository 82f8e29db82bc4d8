"""Signed model bundles against an attacker with write access to the registry: a modified
bundle registered with every checksum retagged to match is refused by `predict`, by
`registry show` and by a real server under load (0 failed requests, the last good model
keeps serving); so are unsigned bundles and bundles signed by an unknown key, once some
key is trusted. The session store's versions were signed by ``trainer_key`` as `train`
registered them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from tests.utils.server_process import ServerProcess
from tests.utils.signing import register_tampered, trusting

from petalops.cli.app import app
from petalops.cli.common import run_guarded
from petalops.config import Settings
from petalops.errors import SignatureError
from petalops.registry import load_runtime, resolve
from petalops.registry.resolve import signature_of
from petalops.registry.signatures import SIGNATURE_TAG, SIGNING_KEY_TAG
from petalops.registry.store import set_alias
from petalops.runtime.signing import KeyPair, Signer, generate

pytestmark = pytest.mark.integration

ROW = [5.1, 3.5, 1.4, 0.2]


def test_train_signs_what_it_registers(trained_settings: Settings, trainer_key: KeyPair) -> None:
    trusted = trusting(trained_settings, trainer_key.public)
    for version in ("1", "2"):
        info = resolve(trained_settings, f"iris/{version}")
        assert info.tags[SIGNING_KEY_TAG] == trainer_key.key_id
        state = signature_of(trusted, info)
        assert (state.signed, state.verified) == (True, True), state
        assert load_runtime(trusted, f"iris/{version}").version == version


def test_tampered_unsigned_and_foreign_bundles_are_refused(
    trained_settings: Settings,
    trainer_key: KeyPair,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    attacker = Signer.from_file(generate(tmp_path / "attacker").private)
    retagged = register_tampered(trained_settings, "2", tmp_path / "retagged")
    foreign = register_tampered(
        trained_settings, "2", tmp_path / "foreign", signature="resigned", signer=attacker
    )
    unsigned = register_tampered(trained_settings, "2", tmp_path / "unsigned", signature="none")
    trusted = trusting(trained_settings, trainer_key.public)

    refused = {}
    for version in (retagged, foreign, unsigned):
        with pytest.raises(SignatureError) as caught:
            load_runtime(trusted, f"iris/{version}")
        refused[version] = caught.value
    assert refused[retagged].reason == "bad_signature"
    assert "does not match its manifest" in refused[retagged].message
    assert refused[foreign].reason == "unknown_key"
    assert attacker.key_id in refused[foreign].message
    assert refused[unsigned].reason == "unsigned"
    assert SIGNATURE_TAG not in resolve(trained_settings, f"iris/{unsigned}").tags

    # With no trusted key (the local default) unsigned and foreign bundles load: the
    # checksums alone hold, which is all a registry-writing attacker needs to beat.
    for version in (retagged, foreign, unsigned):
        assert load_runtime(trained_settings, f"iris/{version}").predict_one(ROW)[0] == 2

    # `registry show` says which, and whether it verifies here.
    monkeypatch.setenv("PETALOPS_HOME", str(trained_settings.home_dir))
    monkeypatch.setenv("PETALOPS_SIGNING__TRUSTED_KEYS", str(trainer_key.public))
    assert run_guarded(app, ["registry", "show", "1", "--json"]) == 0
    assert '"verified": true' in capsys.readouterr().out
    assert run_guarded(app, ["registry", "show", retagged]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert f"signed by key {trainer_key.key_id}; REFUSED" in shown
    assert run_guarded(app, ["registry", "show", unsigned]) == 0
    assert "unsigned; REFUSED" in " ".join(capsys.readouterr().out.split())

    # `predict`, as a user runs it: one line, exit 1, no prediction.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    env["PETALOPS_HOME"] = str(trained_settings.home_dir)
    env["PETALOPS_SIGNING__TRUSTED_KEYS"] = str(trainer_key.public)
    command = [sys.executable, "-m", "petalops", "predict", "--model", f"iris/{retagged}"]
    out = subprocess.run(
        [*command, "--input", "[5.1,3.5,1.4,0.2]"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert (out.returncode, out.stdout) == (1, ""), out
    assert out.stderr.startswith(f"error: version {retagged} of 'iris': the signature by trusted")
    assert out.stderr.count("\n") == 1


def test_server_refuses_a_tampered_retagged_champion_under_load(
    trained_settings: Settings, trainer_key: KeyPair, tmp_path: Path
) -> None:
    tampered = register_tampered(trained_settings, "2", tmp_path / "tampered")
    server = ServerProcess(
        trained_settings.home_dir,
        workers=1,
        env={"PETALOPS_SIGNING__TRUSTED_KEYS": str(trainer_key.public)},
    )
    answers: list[tuple[int, str]] = []
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for _ in range(2000):  # bounded; stopped much earlier
                if stop.is_set():
                    return
                try:
                    response = client.post("/predict", json={"features": ROW})
                    answers.append((response.status_code, response.headers["x-model-version"]))
                except (httpx.HTTPError, KeyError) as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(2)]
    try:
        server.wait_until("/readyz")
        for thread in threads:
            thread.start()
        set_alias(trained_settings, "champion", tampered)
        first = server.admin("/admin/reload").json()
        second = server.admin("/admin/reload").json()  # refused again, not logged again
        stop.set()
        for thread in threads:
            thread.join(30)
    finally:
        stop.set()
        server.stop()
    for status in (first, second):
        assert status["serving"]["champion"] == "1", status
        assert "does not match its manifest" in status["last_error"]
    assert failures == []
    assert answers and set(answers) == {(200, "1")}
    refusals = [
        e for e in server.events() if e["event"] == "reconcile_error" and e["reason"] == "signature"
    ]
    assert len(refusals) == 1, refusals
    assert refusals[0]["signature"] == "bad_signature"
    assert refusals[0]["serving_version"] == "1"
    assert f"version {tampered} of 'iris'" in refusals[0]["error"]
