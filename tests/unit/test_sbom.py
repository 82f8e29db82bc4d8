"""`petalops version --sbom`: the SBOM the image shipped, else one cyclonedx-py makes from
the environment, else one line saying where it is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from petalops import sbom
from petalops.cli.app import app
from petalops.cli.common import run_guarded


def test_the_shipped_sbom_is_printed_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = tmp_path / "sbom.cdx.json"
    shipped.write_text('{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": []}\n')
    monkeypatch.setattr(sbom, "SBOM_FILE", shipped)
    assert run_guarded(app, ["version", "--sbom"]) == 0
    captured = capsys.readouterr()
    assert captured.out == shipped.read_text()
    assert f"SBOM shipped with the image: {shipped}" in captured.err


def test_without_a_shipped_sbom_or_the_tool_it_says_where_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sbom, "SBOM_FILE", tmp_path / "none.json")
    monkeypatch.setattr(sbom, "TOOL", "no_such_sbom_tool")
    assert run_guarded(app, ["version", "--sbom"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"no SBOM is shipped at {tmp_path / 'none.json'}" in captured.err
    assert "pip install 'petalops[sbom]'" in captured.err


@pytest.mark.slow
def test_generated_from_an_environment_with_cyclonedx_py(tmp_path: Path) -> None:
    # A bare venv (no packages) keeps the run short; the image build runs the same command
    # on /opt/venv.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "env")], check=True
    )
    document = json.loads(sbom.generate(str(tmp_path / "env" / "bin" / "python")))
    assert document["bomFormat"] == "CycloneDX"
    assert document["specVersion"] == "1.6"
    assert document.get("components", []) == []
    assert any(
        tool.get("name") == "cyclonedx-py" for tool in document["metadata"]["tools"]["components"]
    )
