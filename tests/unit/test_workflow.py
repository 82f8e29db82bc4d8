"""The GitHub Actions workflow shipped for users' repositories keeps its promised shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "ci.yml"


def _load() -> dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(data, dict)
    return data


def test_triggers_on_push_and_pull_request_to_main() -> None:
    data = _load()
    triggers = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["pull_request"]["branches"] == ["main"]


def test_matrix_cache_lint_test_train_upload() -> None:
    (job,) = _load()["jobs"].values()
    assert job["strategy"]["matrix"]["python-version"] == ["3.11", "3.12", "3.13"]
    steps = job["steps"]
    setup = next(s for s in steps if str(s.get("uses", "")).startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip"
    runs = "\n".join(s.get("run", "") for s in steps)
    for command in ("ruff check", "mypy", "pytest", "petalops train --export artifacts/"):
        assert command in runs
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "artifacts/"
    assert (
        upload["with"]["name"] == "ml-artifacts-${{ matrix.python-version }}-${{ github.run_id }}"
    )
    order = [
        i
        for i, s in enumerate(steps)
        if "run" in s and ("pytest" in s["run"] or "train" in s["run"])
    ]
    assert order == sorted(order)
