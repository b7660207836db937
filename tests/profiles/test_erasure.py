"""Erasure: nothing of the person is left in any table, and nothing of them comes back."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.workspace import Workspace
from tests.identity.test_graph import send
from tests.servers import PatronServer

PERSON = ("ann-user", "ann-device", "crm-anon", "ann@shop.com", "Ann@Shop.com", "+14155552671", "415 555 2671", "crm-77", "Ann Example")


def seed(ws: Workspace) -> None:
    send(
        ws,
        {"type": "page", "anonymousId": "ann-device", "name": "Home", "messageId": "p1"},
        {"type": "identify", "userId": "ann-user", "anonymousId": "ann-device", "messageId": "i1",
         "traits": {"email": " Ann@Shop.com ", "phone": "415 555 2671", "name": "Ann Example"}},
        {"type": "track", "userId": "ann-user", "event": "Order Completed", "messageId": "o1", "properties": {"revenue": 5}},
        # A CRM record that carries only the email and an external id: still theirs.
        {"type": "identify", "anonymousId": "crm-anon", "messageId": "c1",
         "traits": {"email": "ann@shop.com"}, "context": {"externalIds": [{"id": "crm-77", "type": "hubspot_id"}]}},
        {"type": "identify", "userId": "u2", "messageId": "i2", "traits": {"email": "bob@shop.com"}},
    )
    # A failed message of theirs, and a split record naming them.
    prepared = ws.collector.batch({"batch": [{"type": "track", "userId": "ann-user"}]}, source_id="web", received_at=utc_now())
    ws.store.append(rows_to_table([]), prepared.failed_table())
    ws.profiles.build()
    ws.identity.split("ann-user", identifier="anonymous_id:crm-anon", reason="test")
    ws.profiles.build()


def text_everywhere(ws: Workspace) -> str:
    """Every value of every table of the store, as one text."""
    cur = ws.store._cursor()  # type: ignore[attr-defined]
    tables = [r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()]
    chunks = []
    for table in tables:
        rows = cur.execute(f'SELECT * FROM "{table}"').fetchall()
        chunks.append(orjson.dumps(rows, default=str).decode())
    return "\n".join(chunks)


def test_nothing_of_the_person_is_left(workspace: Workspace) -> None:
    seed(workspace)
    before = text_everywhere(workspace)
    assert all(value in before for value in PERSON)
    receipt = workspace.profiles.erase("email:ann@shop.com")
    # The CRM record is theirs too: it carried their email and their external id.
    assert receipt.events_removed == 4 and receipt.failed_removed == 1
    assert receipt.identifiers == {"anonymous_id": 1, "email": 1, "external:hubspot_id": 1, "phone": 1, "user_id": 1}
    after = text_everywhere(workspace)
    for value in PERSON:
        assert value not in after, value
    assert "bob@shop.com" in after and workspace.profiles.show("u2")["traits"]["email"]["value"] == "bob@shop.com"
    assert workspace.events.counts().total == 1  # Bob's identify


def test_replays_and_imports_of_an_erased_person_are_dropped(workspace: Workspace, tmp_path: Path) -> None:
    seed(workspace)
    workspace.profiles.erase("ann-user")
    replay = tmp_path / "replay.jsonl"
    replay.write_text(
        "\n".join(
            orjson.dumps(m).decode()
            for m in (
                {"type": "track", "userId": "ann-user", "event": "Late"},
                {"type": "identify", "anonymousId": "new-device", "traits": {"email": "ANN@shop.com"}},
                {"type": "track", "userId": "u3", "event": "Other person"},
            )
        )
    )
    report = workspace.imports.events(replay, source_id="replay")
    assert (report.stored, report.erased, report.duplicates) == (1, 2, 0)
    assert "ann-user" not in text_everywhere(workspace)


def test_erase_over_http_and_late_events_are_dropped(store_path: Path) -> None:
    with Workspace(Settings(store=store_path)) as ws:
        admin = ws.keys.create("ops", "admin").key
        reader = ws.keys.create("bi", "read").key
        writer = ws.keys.create("web", "write").key
        seed(ws)
        profile = ws.identity.profile_id("ann-user")
    with PatronServer(store_path) as server:
        refused = httpx.delete(f"{server.url}/v1/profiles/{profile}", auth=(reader, ""))
        assert refused.status_code == 401 and "scope 'read'" in refused.json()["message"]
        receipt = httpx.delete(f"{server.url}/v1/profiles/{profile}", auth=(admin, ""))
        assert receipt.status_code == 200, receipt.text
        assert receipt.json()["events_removed"] == 4 and receipt.json()["profile_id"] == profile
        # A late event from an SDK, a message of theirs that is invalid, and someone else's.
        batch = [
            {"type": "track", "userId": "ann-user", "event": "Late", "messageId": "late-1"},
            {"type": "track", "anonymousId": "ann-device"},
            {"type": "track", "userId": "carol", "event": "New", "messageId": "carol-1"},
        ]
        answer = httpx.post(f"{server.url}/v1/batch", json={"batch": batch}, auth=(writer, "")).json()
        assert (answer["accepted"], answer["duplicates"], answer["erased"]) == (1, 0, 1)
        assert [r["index"] for r in answer["rejected"]] == [1]
        single = httpx.post(f"{server.url}/v1/identify", json={"anonymousId": "x", "traits": {"email": "ann@shop.com"}}, auth=(writer, ""))
        assert single.json() == {"success": True, "accepted": 0, "duplicates": 0, "erased": 1}
        gone = httpx.get(f"{server.url}/v1/profiles/{profile}", auth=(reader, ""))
        assert gone.status_code == 404
    with Workspace(Settings(store=store_path)) as ws:
        everything = text_everywhere(ws)
        assert "ann-user" not in everything and "ann-device" not in everything and "ann@shop.com" not in everything
        assert "carol-1" in everything
