"""`petalops serve` refuses in one line, before it says "serving" or touches shared state."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from petalops.cli.app import app
from petalops.cli.common import run_guarded
from petalops.config import Settings
from petalops.serving import runner


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_busy_port_leaves_the_running_servers_metrics_alone(
    trained_settings: Settings,
    busy_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PETALOPS_HOME", str(trained_settings.home_dir))
    # What the server already listening on that port keeps its counters in.
    metrics = trained_settings.home_dir / "serve" / f"prometheus-{busy_port}"
    metrics.mkdir(parents=True)
    (metrics / "counter_123.db").write_bytes(b"live counts")

    code = run_guarded(app, ["serve", "--port", str(busy_port), "--workers", "2"])

    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"error: port {busy_port} on 127.0.0.1 is already in use (another server?); stop it or "
        "pick a free one with --port\n"
    )
    assert (metrics / "counter_123.db").read_bytes() == b"live counts"


def test_outside_a_project_it_refuses_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_guarded(app, ["serve", "--port", "0"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_model_is_one_line(
    trained_settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PETALOPS_HOME", str(trained_settings.home_dir))
    assert run_guarded(app, ["serve", "--model", "nosuch@champion"]) == 2
    assert "error: cannot serve nosuch@champion" in capsys.readouterr().err


def test_wait_for_model_starts_unready_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[Settings] = []
    # The real runner would block in uvicorn; the test needs only what it is handed.
    monkeypatch.setattr(runner, "run", started.append)
    assert run_guarded(app, ["serve", "--wait-for-model", "0", "--model", "iris/4"]) == 0
    assert [s.serve.model for s in started] == ["iris/4"]
    err = capsys.readouterr().err
    assert "waiting for iris/4 (no model registry at" in err
    assert "/readyz answers 503 until it can be served" in err
    assert list(tmp_path.iterdir()) == []
