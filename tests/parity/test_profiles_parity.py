"""Identity resolution and profile builds give DuckDB's results on every backend."""

from __future__ import annotations

from patron.workspace import Workspace
from tests.identity.test_incremental import random_messages, snapshot
from tests.identity.test_incremental import store as collect
from tests.parity.conftest import Pipeline


def test_a_full_build_gives_the_same_graph_profiles_and_traits(pipeline: Pipeline, reference: Workspace) -> None:
    messages = random_messages(11, 260)
    pipeline.collect(messages)
    collect(reference, messages)
    report = pipeline.workspace.profiles.build(full=True)
    reference.profiles.build(full=True)
    expected = snapshot(reference)
    assert report.mode == "full" and report.profiles == len({r[2] for r in expected["identity_identifiers"]})
    got = snapshot(pipeline.workspace)
    for name in expected:
        assert got[name] == expected[name], name
    assert expected["profile_consent_history"] and expected["profile_traits"]
    assert any(row[1] == "refused" for row in expected["identity_edges"]), "the stream should break a limit"


def test_incremental_builds_over_appended_events_equal_a_full_build(pipeline: Pipeline, reference: Workspace) -> None:
    messages = random_messages(12, 240, in_order=True)
    batches = [messages[:140], messages[140:200], messages[200:]]
    modes, merged = [], 0
    for n, batch in enumerate(batches):
        pipeline.collect(batch, "crm" if n == 1 else "web")
        collect(reference, batch, "crm" if n == 1 else "web")
        report = pipeline.workspace.profiles.build()
        modes.append(report.mode)
        merged += report.merged
    assert modes == ["full", "incremental", "incremental"] and merged > 0
    reference.profiles.build(full=True)
    expected, got = snapshot(reference), snapshot(pipeline.workspace)
    for name in expected:
        assert got[name] == expected[name], name


CUSTOMER = [
    {"type": "identify", "userId": "ann", "anonymousId": "a-1", "timestamp": "2024-03-01T10:00:00Z",
     "traits": {"email": "Ann@Shop.example", "plan": "pro", "address": {"city": "Lyon"}},
     "context": {"consent": {"categoryPreferences": {"marketing": True}}}},
    {"type": "track", "anonymousId": "a-1", "event": "Order Completed", "timestamp": "2024-03-02T10:00:00Z",
     "properties": {"revenue": 40.5, "products": [{"category": "shoes", "brand": "Acme"}]},
     "context": {"externalIds": [{"id": 5512, "type": "shopify_id", "collection": "users", "encoding": "none"}]}},
    {"type": "track", "userId": "ann", "event": "Consent Updated", "timestamp": "2024-03-03T10:00:00Z",
     "properties": {"categoryPreferences": {"marketing": False}}},
    {"type": "identify", "anonymousId": "a-2", "traits": {"email": "ann@shop.example", "age": 41},
     "timestamp": "2024-03-04T10:00:00Z"},
]  # fmt: skip


def test_the_customer_view_reads_the_same(pipeline: Pipeline, reference: Workspace) -> None:
    pipeline.collect(CUSTOMER)
    collect(reference, CUSTOMER)
    ws = pipeline.workspace
    ws.profiles.build()
    reference.profiles.build()
    view = ws.profiles.show("email:ann@shop.example")
    traits = {name: trait["value"] for name, trait in view["traits"].items()}
    assert traits == {"email": "ann@shop.example", "plan": "pro", "address": {"city": "Lyon"}, "age": 41}
    computed = view["computed"]
    assert (computed["total_revenue"], computed["order_count"], computed["top_category"]) == (40.5, 1, "shoes")
    assert view["consent"]["current"] == {"marketing": False}
    values = {(i["identifier_type"], i["identifier_value"]) for i in view["identifiers"]}
    assert ("external:shopify_id", "5512") in values and ("anonymous_id", "a-2") in values
    assert view["timeline"]["total"] == 4
    assert ws.profiles.show("external:shopify_id:5512")["profile_id"] == view["profile_id"]
    assert view == reference.profiles.show("user_id:ann")
