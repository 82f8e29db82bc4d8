"""What a hot route answers: a body, its status and content type, and the labels it is
counted under."""

from __future__ import annotations

from dataclasses import dataclass

from petalops.errors import PetalopsError
from petalops.serving.http import JSON, HttpError, error_body

INTERNAL_ERROR = "internal error; see the server log for this request_id"


@dataclass(slots=True, kw_only=True)
class Reply:
    """A plain route's answer (a prediction's is sent by the dispatcher from its codec)."""

    body: bytes
    status: int = 200
    content_type: bytes = JSON
    # The model version the metrics and the request log name (a readiness answer has one).
    version: str = ""
    headers: list[tuple[bytes, bytes]] | None = None

    @classmethod
    def error(cls, error: PetalopsError, request_id: str) -> Reply:
        """The answer to an expected failure: the status its class carries, as JSON."""
        headers = getattr(error, "headers", None)  # HttpError's, and any domain error's
        return cls(
            body=error_body(error, request_id), status=error.http_status, headers=headers or None
        )

    @classmethod
    def internal(cls, request_id: str) -> Reply:
        """The answer to a failure nobody expected: a plain 500, the details in the log."""
        return cls(body=error_body(HttpError(500, INTERNAL_ERROR), request_id), status=500)
