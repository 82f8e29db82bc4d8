"""A worker's key check (`petalops.serving.guard.KeyGuard`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.security.keys import ApiKey, new_key
from petalops.serving.guard import KeyGuard
from petalops.serving.http import Call, HttpError, parse_call
from petalops.serving.metrics import RequestMetrics


def _call(**headers: str) -> Call:
    raw = [(k.lower().replace("_", "-").encode(), v.encode("latin-1")) for k, v in headers.items()]
    return parse_call({"method": "POST", "path": "/predict", "headers": raw})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, admin_token="tok3n")  # type: ignore[call-arg]


@pytest.fixture
def keys() -> dict[str, tuple[str, ApiKey]]:
    return {
        "predict": new_key("shop", "predict", "2/s"),
        "feedback": new_key("labeller", "feedback"),
        "admin": new_key("ops", "admin"),
    }


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(settings: Settings, keys: dict[str, tuple[str, ApiKey]], clock: Clock) -> KeyGuard:
    guard = KeyGuard(
        settings, RequestMetrics(), loader=lambda s: [k for _, k in keys.values()], clock=clock
    )
    asyncio.run(guard.refresh())
    return guard


def _refused(guard: KeyGuard, call: Call, scope: str = "predict") -> HttpError:
    with pytest.raises(HttpError) as caught:
        guard.check(call, scope)
    return caught.value


def test_a_key_of_the_scope_passes_by_either_header(
    guard: KeyGuard, keys: dict[str, tuple[str, ApiKey]], clock: Clock
) -> None:
    key = keys["predict"][0]
    call = _call(authorization=f"Bearer {key}")
    guard.check(call, "predict")
    assert (call.key_name, call.key_scope) == ("shop", "predict")
    guard.check(_call(x_api_key=key), "predict")
    clock.now += 1  # the key's rate is 2/s
    guard.check(_call(authorization=f"bearer   {key} "), "predict")


def test_a_missing_key_names_the_header(guard: KeyGuard) -> None:
    error = _refused(guard, _call())
    assert error.status == 401 and error.field == "Authorization"
    assert "Authorization: Bearer <key>" in error.message and "X-API-Key" in error.message
    assert (b"www-authenticate", b"Bearer") in error.headers


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "po_x",
        "Bearer po_nothere_secret",
        "Bearer \xff\xfe",
    ],
)
def test_malformed_and_unknown_credentials_are_401(guard: KeyGuard, header: str) -> None:
    assert _refused(guard, _call(authorization=header)).status == 401


def test_a_right_id_with_a_wrong_secret_is_401(
    guard: KeyGuard, keys: dict[str, tuple[str, ApiKey]]
) -> None:
    key = keys["predict"][0]
    assert _refused(guard, _call(x_api_key=key[:-2] + "xx")).status == 401


def test_a_key_of_another_scope_is_403_and_admin_goes_everywhere(
    guard: KeyGuard, keys: dict[str, tuple[str, ApiKey]]
) -> None:
    error = _refused(guard, _call(x_api_key=keys["predict"][0]), "feedback")
    assert (
        error.status == 403 and "'predict'" in error.message and "--scope feedback" in error.message
    )
    assert _refused(guard, _call(x_api_key=keys["feedback"][0])).status == 403
    for scope in ("predict", "feedback"):
        guard.check(_call(x_api_key=keys["admin"][0]), scope)
    assert guard.admin(_call(x_api_key=keys["admin"][0])) == "ops"
    assert guard.admin(_call(authorization="Bearer tok3n")) == "admin-token"
    with pytest.raises(HttpError) as caught:
        guard.admin(_call(x_api_key=keys["predict"][0]))
    assert caught.value.status == 403


def test_revoked_and_expired_keys_are_401_after_a_refresh(
    settings: Settings, keys: dict[str, tuple[str, ApiKey]], clock: Clock
) -> None:
    key, record = keys["predict"]
    stored = [record]
    guard = KeyGuard(settings, loader=lambda s: list(stored), clock=clock)
    asyncio.run(guard.refresh())
    guard.check(_call(x_api_key=key), "predict")
    stored[0] = _fields(record, revoked=time.time())
    asyncio.run(guard.refresh())
    error = _refused(guard, _call(x_api_key=key))
    assert error.status == 401 and "revoked" in error.message
    assert guard.guarded == {"predict"}  # a revoked key keeps its scope closed
    stored[0] = _fields(record, expires=time.time() - 1)
    asyncio.run(guard.refresh())
    assert "expired" in _refused(guard, _call(x_api_key=key)).message


def _fields(record: ApiKey, **changes: object) -> ApiKey:
    from dataclasses import replace

    return replace(record, **changes)  # type: ignore[arg-type]


def test_over_the_rate_is_429_with_retry_after(
    guard: KeyGuard, keys: dict[str, tuple[str, ApiKey]], clock: Clock
) -> None:
    key = keys["predict"][0]
    guard.check(_call(x_api_key=key), "predict")
    guard.check(_call(x_api_key=key), "predict")  # a burst of the whole rate (2/s)
    error = _refused(guard, _call(x_api_key=key))
    assert error.status == 429 and (b"retry-after", b"1") in error.headers
    assert "per worker" in error.message
    clock.now += 0.5  # one token back
    guard.check(_call(x_api_key=key), "predict")
    assert _refused(guard, _call(x_api_key=key)).status == 429
    guard.check(_call(x_api_key=keys["admin"][0]), "predict")  # no limit of its own


def test_until_the_first_load_every_scope_is_closed(settings: Settings) -> None:
    def broken(_: Settings) -> list[ApiKey]:
        raise OSError("database is down")

    guard = KeyGuard(settings, loader=broken)
    asyncio.run(guard.refresh())
    assert not guard.loaded and guard.guarded == {"predict", "feedback", "admin"}
    error = _refused(guard, _call(x_api_key="po_abc_def"))
    assert error.status == 503 and "database is down" in error.message
    assert _refused(guard, _call()).status == 401


def test_a_failed_reload_keeps_the_last_keys(
    settings: Settings, keys: dict[str, tuple[str, ApiKey]]
) -> None:
    key, record = keys["predict"]
    answers: list[list[ApiKey] | Exception] = [[record], OSError("gone")]

    def flaky(_: Settings) -> list[ApiKey]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    guard = KeyGuard(settings, loader=flaky)
    asyncio.run(guard.refresh())
    asyncio.run(guard.refresh())
    assert guard.last_error is not None
    guard.check(_call(x_api_key=key), "predict")


def test_no_keys_means_no_scope_is_guarded(settings: Settings) -> None:
    guard = KeyGuard(settings, loader=lambda s: [])
    asyncio.run(guard.refresh())
    assert guard.guarded == frozenset()
    settings.admin_token = ""
    with pytest.raises(HttpError) as caught:
        guard.admin(_call())
    assert caught.value.status == 403 and "keys create --scope admin" in caught.value.message


def test_feedback_still_takes_the_static_tokens(
    tmp_path: Path, keys: dict[str, tuple[str, ApiKey]]
) -> None:
    settings = Settings(home=tmp_path, admin_token="tok3n", serve={"feedback_token": "fb"})  # type: ignore[call-arg]
    guard = KeyGuard(settings, loader=lambda s: [keys["feedback"][1]])
    asyncio.run(guard.refresh())
    call = _call(authorization="Bearer fb")
    guard.check(call, "feedback")
    assert call.key_scope == "feedback"
    call = _call(authorization="Bearer tok3n")
    guard.check(call, "feedback")
    assert call.key_scope == "admin"
    assert _refused(guard, _call(authorization="Bearer fb"), "predict").status == 401
