"""`petalops keys create | list | revoke` and `petalops audit`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petalops.cli.app import app
from petalops.cli.common import run_guarded


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PETALOPS_HOME", str(tmp_path / ".petalops"))
    monkeypatch.setenv("PETALOPS_ACTOR", "bob@test")
    return tmp_path / ".petalops"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_guarded(app, list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_prints_the_key_once_and_stores_only_its_hash(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys, "keys", "create", "--scope", "predict", "--name", "shop", "--rate", "100/s"
    )
    key = out.strip()
    assert code == 0 and key.startswith("po_") and "\n" not in key
    assert "'shop'" in err and "100/s per worker" in err and "shown once" in err
    assert key.split("_", 2)[2].encode() not in (home / "monitor.db").read_bytes()
    code, out, _ = _run(capsys, "keys", "list", "--json")
    [listed] = json.loads(out)
    assert (listed["name"], listed["scope"], listed["rate"], listed["status"]) == (
        "shop",
        "predict",
        "100/s",
        "active",
    )
    code, out, _ = _run(capsys, "keys", "revoke", "shop")
    assert code == 0 and out == f"revoked API key 'shop' (id {listed['key_id']})\n"
    assert "already revoked" in _run(capsys, "keys", "revoke", "shop")[1]
    code, out, _ = _run(capsys, "audit", "--json")
    events = json.loads(out)
    assert [(e["action"], e["target"], e["actor"]) for e in events] == [
        ("key.create", "shop", "bob@test"),
        ("key.revoke", "shop", "bob@test"),
    ]
    assert events[1]["before"]["status"] == "active" and events[1]["after"]["status"] == "revoked"
    code, out, _ = _run(capsys, "audit")
    assert code == 0 and "key.revoke" in out and "bob@test" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "root"], "scope must be one of predict, feedback, admin"),
        (["--scope", "predict", "--rate", "fast"], "e.g. 100/s"),
        (["--scope", "predict", "--expires", "soon"], "e.g. 90d"),
        (["--scope", "predict", "--name", "has space"], "key name"),
    ],
)
def test_a_bad_argument_is_one_line_and_exit_2_and_stores_nothing(
    args: list[str], message: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "keys", "create", *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err
    assert not (home / "monitor.db").exists()


def test_a_second_key_of_one_name_and_an_unknown_revoke_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _run(capsys, "keys", "create", "--scope", "admin", "--name", "ops")[0] == 0
    code, _, err = _run(capsys, "keys", "create", "--scope", "predict", "--name", "ops")
    assert code == 1 and "exists" in err and err.count("\n") == 1
    code, _, err = _run(capsys, "keys", "revoke", "nobody")
    assert code == 2 and "keys list" in err


def test_a_keys_file_instead_of_the_database(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PETALOPS_SECURITY__KEYS_FILE", str(tmp_path / "keys.json"))
    assert _run(capsys, "keys", "create", "--scope", "feedback", "--name", "labels")[0] == 0
    stored = json.loads((tmp_path / "keys.json").read_text())["keys"]
    assert [k["name"] for k in stored] == ["labels"] and "digest" in stored[0]


def test_listing_and_the_trail_outside_a_project_create_nothing(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "no API keys" in _run(capsys, "keys", "list")[1]
    assert "no admin actions" in _run(capsys, "audit")[1]
    assert not home.exists()
