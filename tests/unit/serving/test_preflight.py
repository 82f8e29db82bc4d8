"""`serve`'s checks before it starts: a busy port, a missing registry or model is one
PreflightError naming the fix, and nothing is created; --wait-for-model waits for the model
only."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.utils.signing import trusting

from petalops.config import Settings
from petalops.errors import ConfigError, NotFoundError
from petalops.runtime.signing import KeyPair, generate
from petalops.serving.preflight import ModelDeadline, PreflightError, check_port, preflight


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another server listens on (127.0.0.1), for the length of the test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def on(settings: Settings, port: int, **serve: object) -> Settings:
    return settings.model_copy(
        update={"serve": settings.serve.model_copy(update={"port": port, **serve})}
    )


def test_a_busy_port_is_refused(busy_port: int) -> None:
    with pytest.raises(PreflightError, match=f"port {busy_port} on 127.0.0.1 is already in use"):
        check_port("127.0.0.1", busy_port)


def test_a_free_port_passes_and_stays_free() -> None:
    port = free_port()
    check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # the probe let go of it


def test_a_host_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(PreflightError, match="--host 127.0.0.1"):
        check_port("no-such-host.invalid", free_port())


def test_the_trained_champion_passes(trained_settings: Settings) -> None:
    checked = preflight(on(trained_settings, free_port()))
    assert checked.version is not None and checked.version.version == "1"
    assert checked.version.sha256


def test_no_registry_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    settings = on(Settings(home=tmp_path / "project" / ".petalops"), free_port())
    with pytest.raises(PreflightError, match="run `petalops train` first") as caught:
        preflight(settings)
    assert "--wait-for-model" in caught.value.message
    assert not (tmp_path / "project").exists()


def test_an_unknown_model_is_refused(trained_settings: Settings) -> None:
    settings = on(trained_settings, free_port(), model="nosuch@champion")
    with pytest.raises(PreflightError, match="cannot serve nosuch@champion"):
        preflight(settings)


def test_a_missing_alias_is_refused(trained_settings: Settings) -> None:
    with pytest.raises(PreflightError, match="cannot serve iris@nosuchalias"):
        preflight(on(trained_settings, free_port(), model="iris@nosuchalias"))


def test_waiting_for_the_model_starts_unready(tmp_path: Path) -> None:
    settings = on(Settings(home=tmp_path / ".petalops"), free_port())
    checked = preflight(settings, wait_for_model=True)
    assert checked.version is None
    assert "no model registry" in checked.waiting_reason
    assert "--wait-for-model" not in checked.waiting_reason
    assert not (tmp_path / ".petalops").exists()


def test_waiting_never_excuses_a_busy_port(tmp_path: Path, busy_port: int) -> None:
    settings = on(Settings(home=tmp_path / ".petalops"), busy_port)
    with pytest.raises(PreflightError, match="already in use"):
        preflight(settings, wait_for_model=True)


def test_waiting_never_excuses_a_malformed_reference(tmp_path: Path) -> None:
    settings = on(Settings(home=tmp_path / ".petalops"), free_port(), model="iris@@x")
    with pytest.raises(NotFoundError, match="is not valid; examples: iris@champion"):
        preflight(settings, wait_for_model=True)


def test_the_deadline_stops_a_server_whose_model_never_comes(tmp_path: Path) -> None:
    expired = threading.Event()
    settings = Settings(home=tmp_path / ".petalops")
    deadline = ModelDeadline(settings, 0.3, on_expiry=expired.set).start()
    assert expired.wait(10)
    assert deadline.expired
    assert "within --wait-for-model 0.3 s (no model registry at" in deadline.error().message


def test_the_deadline_lets_a_resolvable_model_serve(trained_settings: Settings) -> None:
    expired = threading.Event()
    deadline = ModelDeadline(trained_settings, 0.3, on_expiry=expired.set).start()
    deadline._thread.join(10)
    assert not expired.wait(0.5) and not deadline.expired


def test_a_champion_no_trusted_key_signed_is_refused_before_start(
    trained_settings: Settings, trainer_key: KeyPair, tmp_path: Path
) -> None:
    port = free_port()
    assert preflight(on(trusting(trained_settings, trainer_key.public), port)).version
    other = generate(tmp_path / "other")
    with pytest.raises(PreflightError) as refused:
        preflight(on(trusting(trained_settings, other.public), port))
    assert refused.value.message.startswith(
        f"cannot serve iris@champion: version 1 of 'iris' is signed by key {trainer_key.key_id}, "
        f"which is not trusted here ({other.key_id})"
    )
    with pytest.raises(ConfigError, match="cannot be read"):
        preflight(on(trusting(trained_settings, tmp_path / "missing.pub"), port))
