"""The watch-only control room app against a real registry (no model loaded)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from petalops.config import Settings
from petalops.rollout.api import start_rollout
from petalops.rollout.control_plane import ControlPlane
from petalops.rollout.plan import RolloutPlan
from petalops.ui.watch import create_watch_app

pytestmark = pytest.mark.slow  # a trained registry per test


def test_it_shows_the_registry_and_acts_with_the_token(trained_settings: Settings) -> None:
    settings = trained_settings.model_copy(update={"admin_token": "watch-token"})
    with TestClient(create_watch_app(settings)) as client:
        nothing = client.post(
            "/ui/actions",
            json={"action": "promote"},
            headers={"Authorization": "Bearer watch-token"},
        )
        assert nothing.status_code == 409 and "petalops rollout start" in nothing.json()["error"]
    start_rollout(settings, "2", "canary", warm_s=0)
    with TestClient(create_watch_app(settings)) as client:
        assert client.get("/", follow_redirects=False).headers["location"] == "/ui"
        assert "control-room.js" in client.get("/ui").text
        assert client.get("/ui/uPlot.min.css").headers["content-type"].startswith("text/css")
        missing = client.get("/ui/nothing.js")
        assert missing.status_code == 404 and "/ui" in missing.json()["error"]
        document = client.get("/ui/state").json()
        assert document["serving"] is None
        assert [v["checksum"] for v in document["versions"]] == ["registered", "registered"]
        assert document["rollout"]["plan"]["version"] == "2"

        refused = client.post("/ui/actions", json={"action": "pause"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        token = {"Authorization": "Bearer watch-token"}
        bad = client.post("/ui/actions", content=b"{", headers=token)
        assert bad.status_code == 400 and bad.json()["field"] == "body"
        done = client.post("/ui/actions", json={"action": "pause"}, headers=token)
        assert done.status_code == 200, done.text
        assert done.json()["plan"]["paused_at"] > 0
        plan = RolloutPlan.parse(ControlPlane(settings).read().plan_raw)
        assert plan is not None and plan.paused
        # The next document shows it at once (the action forgot the cached one).
        assert client.get("/ui/state").json()["rollout"]["plan"]["paused"] is True

        alias = client.post(
            "/ui/actions",
            json={"action": "alias", "alias": "previous", "version": "1"},
            headers=token,
        )
        assert alias.json()["result"] == "iris@previous -> v1"
        assert ControlPlane(settings).read().previous == "1"
