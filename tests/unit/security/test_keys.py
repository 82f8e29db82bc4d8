"""Making, storing and finding API keys (`petalops.security.keys`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.errors import ConflictError, InputError, NotFoundError
from petalops.security.keys import (
    DatabaseKeys,
    FileKeys,
    Rate,
    digest,
    has_no_store,
    load_keys,
    new_key,
    parse_duration,
    parse_rate,
    split_key,
)


def test_a_new_key_is_stored_only_as_its_salted_hash() -> None:
    key, record = new_key("shop", "predict", "100/s")
    key_id, secret = split_key(key) or ("", "")
    assert key_id == record.key_id and len(secret) >= 40
    assert record.digest == digest(record.salt, secret)
    assert secret not in json.dumps(record.public()) and "digest" not in record.public()
    other_key, other = new_key("shop", "predict")
    assert other.salt != record.salt and other_key != key  # a salt of its own


@pytest.mark.parametrize("text", ["", "po", "po_", "po_abc", "po__secret", "pk_abc_secret"])
def test_a_malformed_key_does_not_split(text: str) -> None:
    assert split_key(text) is None


@pytest.mark.parametrize(
    ("text", "rate"),
    [("100/s", Rate(100, 1)), ("600/m", Rate(600, 60)), ("5 / hour", Rate(5, 3600))],
)
def test_rates(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate
    assert parse_rate(str(rate)) == rate


@pytest.mark.parametrize("text", ["100", "0/s", "fast", "10/week"])
def test_a_bad_rate_names_an_example(text: str) -> None:
    with pytest.raises(InputError, match="100/s"):
        parse_rate(text)


def test_durations_and_bad_arguments() -> None:
    assert parse_duration("90d") == 90 * 86400
    with pytest.raises(InputError, match="90d"):
        parse_duration("soon")
    with pytest.raises(InputError, match="scope must be one of predict, feedback, admin"):
        new_key("x", "root")
    with pytest.raises(InputError, match="key name"):
        new_key("has space", "predict")


def test_a_file_store_adds_revokes_and_refuses_a_second_name(tmp_path: Path) -> None:
    store = FileKeys(tmp_path / "keys.json")
    assert store.all() == []
    _, record = new_key("shop", "predict")
    store.add(record)
    with pytest.raises(ConflictError, match="shop"):
        store.add(new_key("shop", "admin")[1])
    assert store.revoke("shop", 123.0).revoked == 123.0
    assert store.revoke(record.key_id, 456.0).revoked == 123.0  # once
    assert [k.status(0) for k in FileKeys(tmp_path / "keys.json").all()] == ["revoked"]
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0  # not readable by others
    with pytest.raises(NotFoundError, match="keys list"):
        store.revoke("nobody", 1.0)


def test_a_database_store_adds_and_revokes(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / ".petalops")  # type: ignore[call-arg]
    assert has_no_store(settings) and load_keys(settings) == []
    store = DatabaseKeys(settings.monitor_url)
    _, record = new_key("ops", "admin", "10/m", expires_in=60)
    store.add(record)
    with pytest.raises(ConflictError):
        store.add(new_key("ops", "predict")[1])
    assert load_keys(settings) == [record]
    store.revoke("ops", 5.0)
    assert [k.revoked for k in load_keys(settings)] == [5.0]
    store.close()


def test_expired_and_revoked_status() -> None:
    _, record = new_key("a", "feedback", expires_in=10)
    assert record.status(record.created) == "active"
    assert record.status(record.created + 11) == "expired"
