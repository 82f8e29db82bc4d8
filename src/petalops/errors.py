"""Domain exceptions and the one table mapping them to CLI exit codes and HTTP statuses.

The table is the classes' ``exit_code`` and ``http_status``: the CLI (``cli.common``) exits
with the one, the server (``serving.reply.Reply.error`` and its FastAPI fallback) answers
the other, and nothing else maps an error to a status.
"""

from __future__ import annotations

from typing import Any


class PetalopsError(Exception):
    """An expected failure: a short message that says what was wrong and how to fix it.

    ``field`` names the input at fault (``features[1]``, ``version``) when there is one; an
    HTTP answer carries it beside the message.
    """

    exit_code = 2
    http_status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class StatusError(PetalopsError):
    """A failure answered with its own HTTP status, a valid example to show and any headers
    the answer needs (``Retry-After``, ``Allow``): the HTTP edge's refusals and the control
    room's, one class for both (the ui imports nothing of serving)."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        example: Any = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message, field)
        self.http_status = status
        self.example = example
        self.headers = headers or []


class ConfigError(PetalopsError):
    """An invalid setting (file, environment or --set)."""


class DataError(PetalopsError):
    """Training or scoring data that cannot be used as it is."""


class InputError(PetalopsError):
    """A request or command input that does not match the model's schema."""

    http_status = 422


class NotFoundError(PetalopsError):
    """A model, version, alias, run or record that does not exist."""

    http_status = 404


class GateFailedError(PetalopsError):
    """The quality gate refused a model: nothing was registered."""

    exit_code = 1
    http_status = 409


class IntegrityError(PetalopsError):
    """An artifact whose checksum does not match the one recorded in the registry."""

    exit_code = 1
    http_status = 500


class SignatureError(IntegrityError):
    """A bundle whose signature is missing, wrong or by an untrusted key, where trusted keys
    are configured. ``reason`` is ``unsigned``, ``unknown_key`` or ``bad_signature``."""

    def __init__(self, message: str, reason: str = "bad_signature") -> None:
        super().__init__(message)
        self.reason = reason


class UnservableError(PetalopsError):
    """A registered version that exists but cannot be served (it failed a check on load)."""

    exit_code = 1
    http_status = 409


class RegistryUnavailableError(PetalopsError):
    """The MLflow tracking/registry server cannot be reached."""

    exit_code = 1
    http_status = 503


class ConflictError(PetalopsError):
    """The requested change conflicts with the current state (for example a held lease)."""

    exit_code = 1
    http_status = 409
