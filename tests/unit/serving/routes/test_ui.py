"""The control room's routes on a real app: the page and its files, the state, the token gate."""

from __future__ import annotations

import re

import orjson
import pytest
from starlette.testclient import TestClient
from tests.utils.serving import BundleSource

from petalops.config import Settings
from petalops.serving.app import create_app
from petalops.ui import assets
from petalops.ui.document import DOCUMENT_ENV, document_path, wanted_path


def test_the_page_and_every_file_it_loads_are_served(client: TestClient) -> None:
    page = client.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert set(loaded) == set(assets.ROUTES) - {"/ui"}
    for path in loaded:
        answer = client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"] == assets.content_type(path).decode()
        # Offline: nothing the page loads reaches for another host.
        assert not re.search(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", answer.text)
    assert "uPlot" in client.get("/ui/uPlot.iife.min.js").text


def test_the_state_names_what_this_worker_serves(client: TestClient) -> None:
    answer = client.get("/ui/state")
    assert answer.status_code == 200
    document = answer.json()
    assert document["serving"]["slots"]["champion"]["version"] == "1"
    assert len(document["serving"]["slots"]["champion"]["sha256"]) == 64
    # This app's registry is a test double: the registry section says what is missing.
    assert "petalops train" in document["errors"]["registry"]
    assert client.get("/ui/state").content == answer.content  # cached: one build


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer wrong"}, 401), ({"Authorization": "s3cret"}, 401)],
)
def test_an_action_without_the_token_is_refused(
    client: TestClient, headers: dict[str, str], status: int
) -> None:
    answer = client.post("/ui/actions", json={"action": "promote"}, headers=headers)
    assert answer.status_code == status
    assert "admin token" in answer.json()["error"]
    assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "delete-everything"}, "action"),
        ({"action": "alias", "alias": "Champion!", "version": "2"}, "alias"),
        ({"action": "alias", "alias": "champion", "version": "two"}, "version"),
        ({"action": "pause", "reason": 3}, "reason"),
        (["promote"], ""),
    ],
)
def test_a_malformed_action_names_its_field(client: TestClient, body: object, field: str) -> None:
    answer = client.post("/ui/actions", json=body, headers={"Authorization": "Bearer s3cret"})
    assert answer.status_code == 400
    assert answer.json().get("field") == (field or None)


def test_actions_are_off_without_a_configured_token(
    settings: Settings, source: BundleSource
) -> None:
    app = create_app(
        settings.model_copy(update={"admin_token": ""}), source=source, open_sink=False
    )
    with TestClient(app) as client:
        answer = client.post(
            "/ui/actions", json={"action": "promote"}, headers={"Authorization": "Bearer "}
        )
    assert answer.status_code == 403
    assert "PETALOPS_ADMIN_TOKEN" in answer.json()["error"]


def test_the_routes_are_documented(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/ui/state", "/ui/actions"} <= set(paths)
    assert paths["/ui/actions"]["post"]["responses"].keys() >= {"200", "401", "403"}


def test_an_unknown_file_is_a_json_404(client: TestClient) -> None:
    answer = client.get("/ui/../../etc/passwd")
    assert answer.status_code == 404
    assert client.get("/ui/nothing.js").json()["error"].startswith("no route /ui/nothing.js")


def test_a_worker_answers_the_builders_document_with_an_etag(
    settings: Settings, source: BundleSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under `petalops serve` the builder publishes the document; the worker answers it,
    with its own slots filled in, and a tab holding the current copy gets a 304."""
    published = document_path(settings)
    published.parent.mkdir(parents=True)
    built = {"generated": 1.0, "serving": None, "versions": [{"version": "1", "sha256": "a"}]}
    published.write_bytes(orjson.dumps(built))
    monkeypatch.setenv(DOCUMENT_ENV, str(published))
    with TestClient(create_app(settings, source=source, open_sink=False)) as client:
        first = client.get("/ui/state")
        assert first.status_code == 200
        document = first.json()
        assert document["serving"]["slots"]["champion"]["version"] == "1"
        # The test double's bundle checksum is not the "a" the document says was registered.
        assert document["versions"][0]["checksum"] == "mismatch"
        assert wanted_path(published).exists()  # the builder is told someone looks
        etag = first.headers["etag"]
        same = client.get("/ui/state", headers={"If-None-Match": etag})
        assert (same.status_code, same.content) == (304, b"")
        built["generated"] = 2.0
        (published.parent / "next.json").write_bytes(orjson.dumps(built))
        (published.parent / "next.json").replace(published)  # as the builder publishes
        newer = client.get("/ui/state", headers={"If-None-Match": etag})
        assert newer.status_code == 200 and newer.json()["generated"] == 2.0
        assert newer.headers["etag"] != etag
