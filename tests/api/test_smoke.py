from __future__ import annotations

import httpx

from tests.servers import PatronServer


def test_track_is_stored_once(server: PatronServer, write_key: str) -> None:
    body = {"userId": "u1", "event": "Signed Up", "messageId": "m-1"}
    first = httpx.post(f"{server.url}/v1/track", json=body, auth=(write_key, ""))
    again = httpx.post(f"{server.url}/v1/track", json=body, auth=(write_key, ""))
    assert first.status_code == 200 and first.json()["accepted"] == 1
    assert again.status_code == 200 and again.json() == {"success": True, "accepted": 0, "duplicates": 1}
