"""The tracking endpoints over real HTTP: auth, every call type, answers, and the OpenAPI document."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from patron.config import Settings
from patron.workspace import Workspace
from tests.servers import PatronServer


@pytest.fixture(scope="module")
def keys_and_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], PatronServer]]:
    store = tmp_path_factory.mktemp("api") / "api.duckdb"
    with Workspace(Settings(store=store)) as ws:
        keys = {
            "write": ws.keys.create("web", "write").key,
            "read": ws.keys.create("reader", "read").key,
            "admin": ws.keys.create("ops", "admin").key,
            "revoked": ws.keys.create("old", "write").key,
        }
        ws.keys.revoke("old")
    with PatronServer(store) as server:
        yield keys, server


@pytest.fixture
def server(keys_and_server: tuple[dict[str, str], PatronServer]) -> PatronServer:
    return keys_and_server[1]


@pytest.fixture
def keys(keys_and_server: tuple[dict[str, str], PatronServer]) -> dict[str, str]:
    return keys_and_server[0]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("identify", {"userId": "u1", "traits": {"email": "A@x.com"}}),
        ("track", {"anonymousId": "a1", "event": "Product Viewed", "properties": {"sku": "1"}}),
        ("page", {"anonymousId": "a1", "name": "Home"}),
        ("screen", {"userId": "u1", "name": "Cart"}),
        ("group", {"userId": "u1", "groupId": "acme", "traits": {"plan": "pro"}}),
        ("alias", {"previousId": "a1", "userId": "u1"}),
    ],
)
def test_every_call_type_is_accepted_with_200(
    server: PatronServer, keys: dict[str, str], path: str, body: dict
) -> None:
    response = httpx.post(f"{server.url}/v1/{path}", json=body, auth=(keys["write"], ""))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0}


@pytest.mark.parametrize(
    ("short", "body", "kind"),
    [
        ("t", {"anonymousId": "b1", "event": "Clicked"}, "track"),
        ("p", {"anonymousId": "b1", "name": "Home"}, "page"),
        ("i", {"anonymousId": "b1", "traits": {"plan": "free"}}, "identify"),
        ("s", {"userId": "u", "name": "Cart"}, "screen"),
        ("g", {"userId": "u", "groupId": "acme"}, "group"),
        ("a", {"userId": "u", "previousId": "b1"}, "alias"),
        ("b", {"batch": [{"type": "track", "userId": "u", "event": "E"}]}, "batch"),
    ],
)
def test_analytics_js_short_paths(server: PatronServer, keys: dict[str, str], short: str, body: dict, kind: str) -> None:
    """Analytics.js 2.0 posts each call to /v1/<first letter of its type>, or /v1/b when batching."""
    response = httpx.post(f"{server.url}/v1/{short}", json={**body, "writeKey": keys["write"]})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    if kind == "batch":
        assert response.json()["rejected"] == []
    # The same rules hold on the short path: an empty message is refused, naming the field.
    wrong = httpx.post(f"{server.url}/v1/{short}", json={"writeKey": keys["write"]})
    assert wrong.status_code == 400
    assert wrong.json()["field"] == ("batch" if kind == "batch" else "userId" if kind != "alias" else "previousId")


def test_write_key_in_the_body_authenticates(server: PatronServer, keys: dict[str, str]) -> None:
    response = httpx.post(
        f"{server.url}/v1/batch",
        json={"writeKey": keys["write"], "batch": [{"type": "track", "userId": "u", "event": "E"}]},
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 1


def test_admin_key_may_write(server: PatronServer, keys: dict[str, str]) -> None:
    response = httpx.post(f"{server.url}/v1/track", json={"userId": "u", "event": "E"}, auth=(keys["admin"], ""))
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "body_key", "fragment"),
    [
        ({}, None, "write key is required"),
        ({"Authorization": "Basic " + base64.b64encode(b"pk_nope:").decode()}, None, "unknown or revoked"),
        ({}, "pk_wrong", "unknown or revoked"),
        ({"Authorization": "Basic !!!notbase64"}, None, "write key is required"),
    ],
)
def test_missing_or_unknown_key_is_401_json(
    server: PatronServer, headers: dict[str, str], body_key: str | None, fragment: str
) -> None:
    body: dict = {"userId": "u", "event": "E"}
    if body_key:
        body["writeKey"] = body_key
    response = httpx.post(f"{server.url}/v1/track", json=body, headers=headers)
    assert response.status_code == 401
    payload = response.json()
    assert payload["code"] == "unauthorized" and fragment in payload["message"]
    assert response.headers["www-authenticate"].startswith("Basic")


def test_revoked_and_read_only_keys_cannot_write(server: PatronServer, keys: dict[str, str]) -> None:
    revoked = httpx.post(f"{server.url}/v1/track", json={"userId": "u", "event": "E"}, auth=(keys["revoked"], ""))
    reader = httpx.post(f"{server.url}/v1/track", json={"userId": "u", "event": "E"}, auth=(keys["read"], ""))
    assert revoked.status_code == 401
    assert reader.status_code == 401 and "scope 'read'" in reader.json()["message"]


def test_single_call_rejection_is_400_naming_the_field(server: PatronServer, keys: dict[str, str]) -> None:
    response = httpx.post(f"{server.url}/v1/alias", json={"userId": "u"}, auth=(keys["write"], ""))
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "code": "invalid_message",
        "message": "previousId: is required for an alias call",
        "field": "previousId",
    }


def test_batch_reports_each_rejection_and_counts_duplicates(server: PatronServer, keys: dict[str, str]) -> None:
    batch = [
        {"type": "track", "userId": "u", "event": "A", "messageId": "batch-dup-1"},
        {"type": "track", "userId": "u"},
        {"type": "track", "userId": "u", "event": "A", "messageId": "batch-dup-1"},
        "not an object",
        {"type": "screen", "anonymousId": "a"},
    ]
    response = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, auth=(keys["write"], ""))
    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert [(r["index"], r["field"]) for r in body["rejected"]] == [(1, "event"), (3, None)]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"messages": []}, "batch"), ({"batch": {}}, "batch"), ({"batch": [], "context": 3}, "context")],
)
def test_bad_batch_envelope_is_400(server: PatronServer, keys: dict[str, str], body: dict, field: str) -> None:
    response = httpx.post(f"{server.url}/v1/batch", json=body, auth=(keys["write"], ""))
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["code"] == "invalid_payload"


def test_non_object_body_is_400(server: PatronServer, keys: dict[str, str]) -> None:
    response = httpx.post(f"{server.url}/v1/track", content=b"[1,2]", auth=(keys["write"], ""))
    assert response.status_code == 400
    assert "JSON object" in response.json()["message"]


@pytest.mark.parametrize(("method", "path", "status", "code"), [("GET", "/v2/x", 404, "not_found"), ("GET", "/v1/track", 405, "method_not_allowed")])
def test_unknown_routes_answer_json(server: PatronServer, method: str, path: str, status: int, code: str) -> None:
    response = httpx.request(method, f"{server.url}{path}")
    assert response.status_code == status
    assert response.json()["code"] == code and response.json()["message"]


def test_health_reports_the_writer(server: PatronServer) -> None:
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["writer_alive"] is True


def test_openapi_describes_every_endpoint(server: PatronServer) -> None:
    document = httpx.get(f"{server.url}/openapi.json").json()
    for call in ("identify", "track", "page", "screen", "group", "alias", "batch"):
        assert document["paths"][f"/v1/{call[0]}"]["post"]["operationId"] == f"collect_{call}_short"
        operation = document["paths"][f"/v1/{call}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[1] in document["components"]["schemas"]
        assert {"200", "400", "401", "413", "503"} <= set(operation["responses"])
    assert "/health" in document["paths"]
    track = document["components"]["schemas"]["TrackMessage"]
    assert "event" in track["required"]


def test_browser_settings_document_points_at_this_server(server: PatronServer, keys: dict[str, str]) -> None:
    response = httpx.get(f"{server.url}/v1/projects/{keys['write']}/settings")
    assert response.status_code == 200
    segment = response.json()["integrations"]["Segment.io"]
    assert segment == {"apiKey": keys["write"], "apiHost": f"127.0.0.1:{server.port}/v1", "protocol": "http"}
    unknown = httpx.get(f"{server.url}/v1/projects/pk_unknown/settings")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_write_key"


def test_browsers_may_post_from_another_origin(server: PatronServer, keys: dict[str, str]) -> None:
    preflight = httpx.options(
        f"{server.url}/v1/batch",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in ("*", "https://shop.example")
    # Analytics.js sends text/plain with the write key in the body, to avoid a preflight.
    response = httpx.post(
        f"{server.url}/v1/track",
        content=b'{"writeKey": "%s", "anonymousId": "b", "event": "Viewed"}' % keys["write"].encode(),
        headers={"Origin": "https://shop.example", "Content-Type": "text/plain"},
    )
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"


def test_root_says_where_to_look(server: PatronServer) -> None:
    index = httpx.get(f"{server.url}/").json()
    assert index["docs"] == "/docs" and "/v1/batch" in index["collect"]
    assert httpx.get(f"{server.url}{index['docs']}").status_code == 200
