"""`Reply`: keyword fields only, and the answer to an error by the one table."""

from __future__ import annotations

import orjson
import pytest

from petalops import errors
from petalops.serving.http import JSON, HttpError
from petalops.serving.reply import Reply


def test_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Reply(b"{}", 200)  # type: ignore[misc]
    reply = Reply(body=b"{}")
    assert (reply.status, reply.content_type, reply.version, reply.headers) == (200, JSON, "", None)


# StatusError carries its status per instance (HttpError's base; tested below).
DOMAIN = [
    value
    for value in vars(errors).values()
    if isinstance(value, type)
    and issubclass(value, errors.PetalopsError)
    and not issubclass(value, errors.StatusError)
]


@pytest.mark.parametrize("kind", DOMAIN, ids=lambda kind: kind.__name__)
def test_every_domain_error_answers_its_class_status(kind: type[errors.PetalopsError]) -> None:
    reply = Reply.error(kind("what went wrong"), "r-1")
    assert reply.status == kind.http_status
    assert orjson.loads(reply.body) == {"error": "what went wrong", "request_id": "r-1"}
    assert reply.headers is None


def test_an_http_error_keeps_its_status_field_example_and_headers() -> None:
    refusal = HttpError(503, "not yet", "model", {"x": 1}, headers=[(b"retry-after", b"1")])
    reply = Reply.error(refusal, "r-2")
    assert reply.status == 503
    assert reply.headers == [(b"retry-after", b"1")]
    assert orjson.loads(reply.body) == {
        "error": "not yet",
        "field": "model",
        "example": {"x": 1},
        "request_id": "r-2",
    }


def test_an_internal_error_says_nothing_of_the_failure() -> None:
    reply = Reply.internal("r-3")
    assert reply.status == 500
    assert orjson.loads(reply.body) == {
        "error": "internal error; see the server log for this request_id",
        "request_id": "r-3",
    }
