"""`finish`: the exit code, and after `skip_teardown` no interpreter teardown, but the atexit
handlers and everything written to stdout still done; a live non-daemon thread is waited
for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
from petalops.cli.common import finish, skip_teardown
out = Path(sys.argv[1])

class Teardown:
    def __del__(self):  # runs only in the interpreter's teardown
        (out / "teardown").write_text("ran")

keep = Teardown()
atexit.register(lambda: (out / "atexit").write_text("ran"))
if sys.argv[2] == "thread":
    threading.Thread(target=lambda: (time.sleep(0.3), (out / "thread").write_text("done"))).start()
skip_teardown()
sys.stdout.write("x" * 100000)  # buffered: a pipe takes 64 KiB at a time
finish(3)
"""


@pytest.mark.parametrize("mode", ["plain", "thread"])
def test_finish_skips_only_the_teardown(mode: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), mode], capture_output=True, text=True
    )
    assert out.returncode == 3, out.stderr
    assert out.stdout == "x" * 100000
    assert (tmp_path / "atexit").read_text() == "ran"
    if mode == "thread":  # a normal exit: the thread's work done, the teardown too
        assert (tmp_path / "thread").read_text() == "done"
        assert (tmp_path / "teardown").exists()
    else:
        assert not (tmp_path / "teardown").exists()
