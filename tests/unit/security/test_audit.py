"""The audit trail (`petalops.security.audit`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from petalops.config import Settings
from petalops.security import audit


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / ".petalops")  # type: ignore[call-arg]


def test_events_come_back_oldest_first_with_before_and_after(settings: Settings) -> None:
    audit.record(settings, "alias.set", "iris@champion", {"version": "1"}, {"version": "2"})
    with audit.acting_as("ops-key"):
        audit.record(settings, "rollout.promote", "iris rollout r-1", None, {"phase": "done"})
    audit.record(settings, "key.revoke", "shop", actor="someone")
    events = audit.entries(settings)
    assert [e["action"] for e in events] == ["alias.set", "rollout.promote", "key.revoke"]
    assert events[0]["before"] == {"version": "1"} and events[0]["after"] == {"version": "2"}
    assert events[1]["actor"] == "ops-key" and events[2]["actor"] == "someone"
    assert "@" in events[0]["actor"]  # user@host outside acting_as
    assert [e["action"] for e in audit.entries(settings, action="rollout")] == ["rollout.promote"]
    assert [e["action"] for e in audit.entries(settings, limit=1)] == ["key.revoke"]


def test_the_actor_follows_into_a_worker_thread(settings: Settings) -> None:
    async def act() -> str:
        with audit.acting_as("ui-admin"):
            return await asyncio.to_thread(audit.current_actor)

    assert asyncio.run(act()) == "ui-admin"


def test_a_trail_that_cannot_be_written_does_not_fail_the_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("")
    settings = Settings(home=tmp_path, monitor={"db_url": f"sqlite:///{blocked}/x/m.db"})  # type: ignore[call-arg]
    audit.record(settings, "alias.set", "iris@champion")
    assert "not recorded" in capsys.readouterr().err
