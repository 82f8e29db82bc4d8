"""What `petalops serve` checks before it says "serving" or touches anything shared.

The port must be free (a second server on a busy port used to clear the first one's
Prometheus multiprocess directory before uvicorn failed to bind), the registry reachable
and the model reference resolvable to a version petalops can verify. Each failure is one
:class:`PreflightError` naming the fix. ``wait_for_model`` keeps the orchestrator's
behaviour: the server starts unready (``/readyz`` 503) and retries until the model appears,
for at most ``--wait-for-model SECONDS`` (:class:`ModelDeadline`; 0 waits as long as it takes).

Reads only: the registry through the no-MLflow read path, the port through a bind that is
closed at once. Nothing is created.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from petalops.config import Settings
from petalops.errors import (
    ConfigError,
    NotFoundError,
    PetalopsError,
    RegistryUnavailableError,
    SignatureError,
)
from petalops.registry import VersionInfo, parse_ref, resolve
from petalops.registry.signatures import SIGNATURE_TAG, SIGNING_KEY_TAG, describe, trusted_keys

WAIT_HINT = "or start with --wait-for-model to serve unready and wait for it"


class PreflightError(PetalopsError):
    """`petalops serve` will not start: the port, the registry or the model is not usable."""

    exit_code = 2


@dataclass(frozen=True)
class Preflight:
    """What the checks found: the version the server will start with (None while waiting)."""

    version: VersionInfo | None
    waiting_reason: str = ""


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` as uvicorn will (SO_REUSEADDR) and let go at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except socket.gaierror:
        raise PreflightError(
            f"cannot serve on host {host!r}: not an address or a name this machine resolves; "
            "use --host 127.0.0.1 (this machine) or --host 0.0.0.0 (every interface)"
        ) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PreflightError(
                f"port {port} on {host} is already in use (another server?); stop it or pick "
                "a free one with --port"
            ) from None
        if exc.errno == errno.EACCES:
            raise PreflightError(
                f"no permission to listen on port {port}; use a port above 1023 (--port 8000)"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise PreflightError(
                f"cannot serve on {host}: it is not an address of this machine; use --host "
                "127.0.0.1 or --host 0.0.0.0"
            ) from None
        raise PreflightError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _unresolvable(settings: Settings) -> tuple[VersionInfo | None, str]:
    """The version ``serve.model`` points to, read as the workers will read it, or why not."""
    try:
        info = resolve(settings, settings.model_ref)
    except (NotFoundError, RegistryUnavailableError) as exc:
        return None, exc.message
    return info, ""


def check_model(settings: Settings) -> VersionInfo:
    """The version ``serve.model`` points to; a PreflightError when it cannot be served."""
    ref = settings.model_ref
    info, problem = _unresolvable(settings)
    if info is None:
        raise PreflightError(f"cannot serve {ref}: {problem}; {WAIT_HINT}")
    if not info.sha256:
        raise PreflightError(
            f"cannot serve {ref}: version {info.version} of {info.name!r} has no petalops.sha256 "
            "tag, so its bundle cannot be verified; serve a version petalops registered"
        )
    keys = trusted_keys(settings)
    if keys:
        # Unsigned, or by a key not trusted here: told by the tags alone, so the server
        # never starts to wait unready for a model it would refuse. A signature that does
        # not match its bundle is found when the workers load it.
        try:
            keys.signer_of(
                info.tags.get(SIGNATURE_TAG, ""), info.tags.get(SIGNING_KEY_TAG, ""), describe(info)
            )
        except SignatureError as exc:
            raise PreflightError(f"cannot serve {ref}: {exc.message}") from None
    return info


def preflight(settings: Settings, *, wait_for_model: bool = False) -> Preflight:
    """Every check `petalops serve` runs before it starts; raises :class:`PreflightError`.

    With ``wait_for_model`` a model that cannot be resolved yet (no registry, no champion,
    registry down) is reported, not fatal; a bad reference or a busy port still is.
    """
    parse_ref(settings.model_ref, settings.project)
    trusted_keys(settings)  # a trusted key file that cannot be read stops the start here
    check_port(settings.serve.host, settings.serve.port)
    if wait_for_model:
        info, problem = _unresolvable(settings)
        if info is None:
            return Preflight(version=None, waiting_reason=problem)
    return Preflight(version=check_model(settings))


def _stop_this_server() -> None:
    # uvicorn's own SIGTERM handler: workers finish in-flight requests and exit, `run` returns.
    os.kill(os.getpid(), signal.SIGTERM)


class ModelDeadline:
    """Under ``--wait-for-model SECONDS``: stop the unready server if the model has not
    become resolvable in time, so an orchestrator sees an exit instead of a replica that
    waits forever. Polls the registry's read path once a second, off the serving threads."""

    POLL_SECONDS = 1.0

    def __init__(
        self,
        settings: Settings,
        seconds: float,
        on_expiry: Callable[[], None] = _stop_this_server,
    ) -> None:
        self.settings = settings
        self.seconds = seconds
        self.on_expiry = on_expiry
        self.expired = False
        self.reason = ""
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="model-deadline", daemon=True)

    def start(self) -> ModelDeadline:
        """Start watching; returns self."""
        if self.on_expiry is _stop_this_server:
            # uvicorn (one worker) re-raises the SIGTERM it shut down for once it has restored
            # the handler it found: this one, so the expiry ends as one line and exit 2.
            signal.signal(signal.SIGTERM, self._on_sigterm)
        self._thread.start()
        return self

    def _on_sigterm(self, signum: int, frame: object) -> None:
        if self.expired:
            raise self.error()
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)

    def stop(self) -> None:
        """Stop watching (the server ended for another reason)."""
        self._done.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._done.is_set():
            info, self.reason = _unresolvable(self.settings)
            if info is not None:
                return
            if time.monotonic() >= deadline:
                self.expired = True
                self.on_expiry()
                return
            self._done.wait(min(self.POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def error(self) -> PreflightError:
        """The one line `serve` exits with after the deadline passed."""
        return PreflightError(
            f"{self.settings.model_ref} could not be served within --wait-for-model "
            f"{self.seconds:g} s ({self.reason}); train or register it, or wait longer"
        )


def check_tls(settings: Settings) -> None:
    """With serve.tls_cert/tls_key: both readable and a matching pair, else one line that
    names the file (before a worker starts and fails on it)."""
    import ssl

    serve = settings.serve
    if serve.tls_cert is None or serve.tls_key is None:
        return
    for flag, path in (("--tls-cert", serve.tls_cert), ("--tls-key", serve.tls_key)):
        if not path.is_file():
            raise ConfigError(f"{flag} {path}: no such file; give a PEM file")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            serve.tls_cert, serve.tls_key
        )
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"--tls-cert {serve.tls_cert} / --tls-key {serve.tls_key} cannot be used: {exc}; "
            "give a PEM certificate and its private key"
        ) from None
