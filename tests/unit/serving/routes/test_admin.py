"""Admin routes: token-guarded, disabled without a token."""

from __future__ import annotations

from starlette.testclient import TestClient

AUTH = {"Authorization": "Bearer s3cret"}


def test_admin_needs_the_token(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 401
    wrong = client.get("/admin/status", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert client.get("/admin/status", headers=AUTH).json()["ready"] is True


def test_admin_disabled_without_a_token(client: TestClient) -> None:
    client.app.server.settings.admin_token = ""  # type: ignore[attr-defined]
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 403
    assert "PETALOPS_ADMIN_TOKEN" in response.json()["error"]


def test_the_shipped_example_token_is_refused(client: TestClient) -> None:
    client.app.server.settings.admin_token = "change-me"  # type: ignore[attr-defined]
    response = client.post("/admin/reload", headers={"Authorization": "Bearer change-me"})
    assert response.status_code == 403
    assert "'change-me'" in response.json()["error"] and "secret" in response.json()["error"]
