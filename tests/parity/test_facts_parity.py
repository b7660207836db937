"""Values read out of the messages' JSON are the same text on every engine."""

from __future__ import annotations

import orjson

from tests.identity.test_incremental import store as collect
from tests.parity.conftest import Pipeline

AWKWARD = [
    {"type": "identify", "userId": "u1", "traits": {
        "email": "Zoë@Example.com", "name": "O'Brien \"Bob\"", "note": "line\nbreak\ttab \\ slash",
        "score": 1.50, "big": 12345678901234567, "ratio": 1e-7, "neg": -0.0, "flag": True, "none": None,
        "address": {"city": "Zürich", "lines": ["a", "b"]}, "tags": [], "emoji": "😀"}},
    {"type": "track", "userId": "u1", "event": "Order Completed",
     "properties": {"revenue": "19.90", "products": [{"category": "Bags & Shoes", "brand": "Ünïcode"}, {"category": "x"}]},
     "context": {"externalIds": [{"id": 77, "type": "shopify_id", "collection": "users", "encoding": "none"}],
                 "traits": {"phone": "+44 20 7946 0958"}, "device": {"type": "ios"}, "os": {"name": "iOS"},
                 "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) AppleWebKit/605.1.15 Version/17.0 Mobile Safari/604.1",
                 "consent": {"categoryPreferences": {"marketing": "true", "ads": False}}}},
    {"type": "track", "anonymousId": "a1", "event": "Consent Updated",
     "properties": {"categoryPreferences": {"marketing": True, "analytics": None}}},
    {"type": "group", "userId": "u1", "groupId": "g1", "traits": {"name": "Acme, Inc.", "industry": None}},
    {"type": "page", "anonymousId": "a1", "name": "Home", "context": {"campaign": {"name": "spring"}, "locale": "fr-FR",
     "externalIds": [{"id": "crm-9", "type": "crm_id"}]}, "properties": {"revenue": "n/a", "total": 12}},
]  # fmt: skip
for n, message in enumerate(AWKWARD):  # the same ids and times in every store
    message.update(messageId=f"awkward-{n}", timestamp=f"2024-02-0{n + 1}T12:00:00Z")


#: Facts that hold JSON text (objects, arrays): compared as parsed values. Engines write
#: the same values differently: Spark's variant orders an object's keys and spells some
#: numbers its own way (``-0.0`` as ``0``, ``1e-7`` as ``1.0E-7``).
JSON_FACTS = ("traits", "context_traits", "external_ids", "consent", "consent_update")


def facts(ws: object) -> list[dict[str, object]]:
    store = ws.store  # type: ignore[attr-defined]
    table = ws.facts.table()  # type: ignore[attr-defined]
    rows = store.to_pyarrow(table.drop("seq")).to_pylist()
    parsed = [{k: orjson.loads(v) if k in JSON_FACTS and v is not None else v for k, v in row.items()} for row in rows]
    return sorted(parsed, key=lambda row: str(row["message_id"]))


def test_facts_are_the_same_text(pipeline: Pipeline, reference: object) -> None:
    pipeline.collect(AWKWARD)
    collect(reference, AWKWARD)  # type: ignore[arg-type]
    got, expected = facts(pipeline.workspace), facts(reference)
    assert got == expected
    assert any(row["email"] == "Zoë@Example.com" for row in expected)
    assert any(row["external_id"] == "77" for row in expected)
    assert any(row.get("category") == "Bags & Shoes" for row in expected)


def test_traits_and_consent_read_the_same_values(pipeline: Pipeline, reference: object) -> None:
    pipeline.collect(AWKWARD)
    collect(reference, AWKWARD)  # type: ignore[arg-type]
    ws = pipeline.workspace
    ws.profiles.build()
    reference.profiles.build()  # type: ignore[attr-defined]
    view = ws.profiles.show("user_id:u1")
    assert view == reference.profiles.show("user_id:u1")  # type: ignore[attr-defined]
    traits = {name: trait["value"] for name, trait in view["traits"].items()}
    assert traits["name"] == 'O\'Brien "Bob"' and traits["address"] == {"city": "Zürich", "lines": ["a", "b"]}
    assert traits["score"] == 1.5 and traits["big"] == 12345678901234567 and traits["flag"] is True
    assert "none" not in traits and traits["tags"] == []
    anonymous = ws.profiles.show("anonymous_id:a1")
    assert anonymous == reference.profiles.show("anonymous_id:a1")  # type: ignore[attr-defined]
    assert anonymous["consent"]["current"] == {"marketing": True}
