"""Reading profiles over real HTTP, with read tokens."""

from __future__ import annotations

from pathlib import Path

import httpx

from patron.config import Settings
from patron.workspace import Workspace
from tests.identity.test_graph import send
from tests.servers import PatronServer


def test_profiles_over_http(store_path: Path) -> None:
    with Workspace(Settings(store=store_path)) as ws:
        reader = ws.keys.create("bi", "read").key
        writer = ws.keys.create("web", "write").key
        send(ws, {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "ann@shop.com", "phone": "415 555 2671"}})
        send(ws, {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"revenue": 12.5}})
        ws.profiles.build()
        profile = ws.identity.profile_id("u1")
    with PatronServer(store_path) as server:
        def get(path: str, key: str | None = reader, **params: object) -> httpx.Response:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return httpx.get(f"{server.url}{path}", params=params, headers=headers)

        view = get(f"/v1/profiles/{profile}").json()
        assert view["profile_id"] == profile
        assert view["traits"]["email"]["value"] == "ann@shop.com"
        assert view["computed"]["order_count"] == 1 and view["computed"]["total_revenue"] == 12.5
        assert view["timeline"]["total"] == 2
        for params in ({"email": "ANN@shop.com"}, {"user_id": "u1"}, {"anonymous_id": "a1"}, {"phone": "(415) 555-2671"}):
            found = get("/v1/profiles", **params)
            assert found.status_code == 200 and found.json()["profile_id"] == profile, params
        page = get(f"/v1/profiles/{profile}", limit=1, offset=1).json()["timeline"]
        assert (page["limit"], page["offset"], len(page["events"])) == (1, 1, 1)
        # Basic auth with the read key works too.
        assert httpx.get(f"{server.url}/v1/profiles/{profile}", auth=(reader, "")).status_code == 200

        missing = get("/v1/profiles/prof_nope")
        assert missing.status_code == 404 and missing.json()["code"] == "unknown_profile"
        ambiguous = get("/v1/profiles", email="a@b.c", user_id="u1")
        assert ambiguous.status_code == 400 and "exactly one" in ambiguous.json()["message"]
        assert get(f"/v1/profiles/{profile}", key=None).status_code == 401
        forbidden = get(f"/v1/profiles/{profile}", key=writer)
        assert forbidden.status_code == 401 and "scope 'write'" in forbidden.json()["message"]
        bad_limit = get(f"/v1/profiles/{profile}", limit=0)
        assert bad_limit.status_code == 400 and bad_limit.json()["field"] == "limit"


def test_reading_without_a_key_asks_for_a_read_key(store_path: Path) -> None:
    with Workspace(Settings(store=store_path)) as ws:
        ws.keys.create("web", "write")
    with PatronServer(store_path) as server:
        answer = httpx.get(f"{server.url}/v1/profiles/prof_x")
        assert answer.status_code == 401
        assert "a read key is required" in answer.json()["message"] and "--scope read" in answer.json()["message"]
