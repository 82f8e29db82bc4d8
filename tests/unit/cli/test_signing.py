"""`petalops keys signing init`: a key pair, its key id and the settings that use it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from petalops.cli.app import app
from petalops.cli.common import run_guarded
from petalops.runtime.signing import Signer, TrustedKeys


def test_init_writes_the_pair_and_says_how_to_use_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(app, ["keys", "signing", "init"]) == 0
    out = capsys.readouterr().out
    private = tmp_path / ".petalops" / "keys" / "signing.key"
    public = private.with_suffix(".pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key_id = Signer.from_file(private).key_id
    assert TrustedKeys.from_paths([public]).ids() == [key_id]
    assert out.splitlines()[0] == f"key id       {key_id}"
    assert f"export PETALOPS_SIGNING__KEY_FILE={private}" in out
    assert f"export PETALOPS_SIGNING__TRUSTED_KEYS={public}" in out


def test_init_never_overwrites_and_checks_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded(app, ["keys", "signing", "init", "--dir", "k", "--json"]) == 0
    capsys.readouterr()
    before = (tmp_path / "k" / "signing.key").read_bytes()
    assert run_guarded(app, ["keys", "signing", "init", "--dir", "k"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "exists already" in err and err.count("\n") == 1
    assert (tmp_path / "k" / "signing.key").read_bytes() == before
    assert run_guarded(app, ["keys", "signing", "init", "--dir", "k", "--force"]) == 0
    assert (tmp_path / "k" / "signing.key").read_bytes() != before
    capsys.readouterr()
    assert run_guarded(app, ["keys", "signing", "init", "--name", "../x"]) == 2
    assert "is not a file name" in capsys.readouterr().err
