"""The control room's builder process: builds only while someone looks, ends with its pipe."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import orjson
import pytest

from petalops.config import Settings
from petalops.ui.builder import SETTINGS_ENV
from petalops.ui.document import document_path, wanted_path

pytestmark = pytest.mark.slow  # a trained registry, and a process that imports the stores


def test_it_builds_while_wanted_and_exits_when_its_pipe_closes(
    trained_settings: Settings,
) -> None:
    published = document_path(trained_settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PETALOPS_")}
    env[SETTINGS_ENV] = trained_settings.model_dump_json(by_alias=True)
    builder = subprocess.Popen(
        [sys.executable, "-m", "petalops.ui.builder"], env=env, stdin=subprocess.PIPE
    )
    try:
        time.sleep(1.0)  # four ticks with nobody looking
        assert not published.exists()
        wanted_path(published).parent.mkdir(parents=True, exist_ok=True)
        wanted_path(published).touch()
        deadline = time.monotonic() + 60
        while not published.exists():
            assert builder.poll() is None, "the builder died"
            assert time.monotonic() < deadline, "no document was built"
            time.sleep(0.1)
        document = orjson.loads(published.read_bytes())
        assert [v["version"] for v in document["versions"]] == ["2", "1"]
        assert document["errors"] == {}
    finally:
        assert builder.stdin is not None
        builder.stdin.close()
        assert builder.wait(30) == 0


def test_it_refuses_to_start_without_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k != SETTINGS_ENV}
    done = subprocess.run(
        [sys.executable, "-m", "petalops.ui.builder"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "petalops serve" in done.stderr
