"""Profiles on a real store: merged traits with provenance, computed traits, timelines."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from patron.profiles.exceptions import ProfilesNotBuilt
from patron.workspace import Workspace
from tests.identity.test_graph import send


def order(user: str, day: str, revenue: float, message_id: str) -> dict:
    return {
        "type": "track", "userId": user, "event": "Order Completed", "messageId": message_id,
        "properties": {"order_id": message_id, "revenue": revenue}, "timestamp": f"{day}T12:00:00Z",
    }


@pytest.fixture
def built(workspace: Workspace) -> Workspace:
    send(
        workspace,
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "id-1", "timestamp": "2024-01-01T00:00:00Z",
         "traits": {"email": "ann@shop.com", "plan": "free", "age": 30, "address": {"city": "Leeds"}}},
        {"type": "identify", "userId": "u1", "messageId": "id-2", "timestamp": "2024-03-01T00:00:00Z",
         "traits": {"plan": "pro", "age": None}},
        # An older message stored later must not overwrite a newer value.
        {"type": "identify", "userId": "u1", "messageId": "id-0", "timestamp": "2023-06-01T00:00:00Z",
         "traits": {"plan": "trial", "nickname": "annie"}},
        {"type": "page", "anonymousId": "a1", "name": "Home", "messageId": "p-1", "timestamp": "2023-12-31T23:00:00Z",
         "context": {"traits": {"locale": "en-GB"}}},
        order("u1", "2024-01-10", 30.0, "o-1"),
        order("u1", "2024-01-20", 50.0, "o-2"),
        order("u1", "2024-02-09", 10.0, "o-3"),
        {"type": "identify", "userId": "u2", "messageId": "id-9", "timestamp": "2024-01-05T00:00:00Z", "traits": {"plan": "free"}},
    )
    workspace.profiles.build()
    return workspace


def test_latest_value_wins_nulls_never_overwrite_and_provenance_is_kept(built: Workspace) -> None:
    view = built.profiles.show("u1")
    traits = view["traits"]
    assert traits["plan"]["value"] == "pro" and traits["plan"]["message_id"] == "id-2"
    assert traits["age"]["value"] == 30 and traits["age"]["message_id"] == "id-1"  # the later null did not erase it
    assert traits["nickname"]["value"] == "annie"  # only the oldest message had it
    assert traits["address"]["value"] == {"city": "Leeds"}
    assert traits["locale"] == {"value": "en-GB", "source_id": "web", "message_id": "p-1", "updated_at": datetime(2023, 12, 31, 23)}
    assert traits["email"]["source_id"] == "web"


def test_computed_traits(built: Workspace) -> None:
    computed = built.profiles.show("email:ann@shop.com")["computed"]
    assert computed["order_count"] == 3
    assert computed["total_revenue"] == pytest.approx(90.0)
    assert computed["average_order_value"] == pytest.approx(30.0)
    assert computed["avg_days_between_orders"] == pytest.approx(15.0)  # 30 days over 2 gaps
    assert computed["first_order_at"] == datetime(2024, 1, 10, 12)
    assert computed["first_seen"] == datetime(2023, 6, 1)  # id-0, older than the anonymous page view
    assert computed["event_count"] == 7
    other = built.profiles.show("u2")["computed"]
    assert other["order_count"] == 0 and other["total_revenue"] is None and other["avg_days_between_orders"] is None


def test_timeline_pages_newest_first(built: Workspace) -> None:
    first = built.profiles.show("u1", limit=2)
    assert first["timeline"]["total"] == 7
    assert [e["message_id"] for e in first["timeline"]["events"]] == ["id-2", "o-3"]
    second = built.profiles.show("u1", limit=2, offset=2)
    assert [e["message_id"] for e in second["timeline"]["events"]] == ["o-2", "o-1"]


def test_events_follow_their_identifiers_after_a_split(built: Workspace) -> None:
    built.identity.split("u1", identifier="anonymous_id:a1")
    built.profiles.build(resolve=False)
    assert built.profiles.show("u1")["timeline"]["total"] == 6
    anonymous = built.profiles.show("anonymous_id:a1")
    assert [e["message_id"] for e in anonymous["timeline"]["events"]] == ["p-1"]
    assert anonymous["traits"]["locale"]["value"] == "en-GB" and "plan" not in anonymous["traits"]


def test_show_before_build_says_what_to_run(workspace: Workspace) -> None:
    with pytest.raises(ProfilesNotBuilt, match="patron profiles build"):
        workspace.profiles.show("u1")


def test_export_holds_everything_about_the_person(built: Workspace) -> None:
    document = built.profiles.export("u1")
    assert {i["identifier_value"] for i in document["identifiers"]} == {"u1", "a1", "ann@shop.com"}
    assert [e["message_id"] for e in document["events"]] == ["id-0", "p-1", "id-1", "o-1", "o-2", "o-3", "id-2"]
    assert document["events"][0]["raw"]["traits"]["nickname"] == "annie"  # as received
    assert document["traits"]["plan"]["value"] == "pro" and document["computed"]["order_count"] == 3
    assert {link["message_id"] for link in document["identity_links"]} == {"id-1"}
    assert all(e["user_id"] != "u2" for e in document["events"])


def test_contextual_and_firmographic_computed_traits(workspace: Workspace) -> None:
    send(
        workspace,
        {"type": "page", "userId": "u1", "timestamp": "2024-01-01T00:00:00Z",
         "context": {"device": {"type": "mobile"}, "os": {"name": "iOS"}, "locale": "en-GB", "campaign": {"name": "spring"}}},
        {"type": "screen", "userId": "u1", "name": "Cart", "timestamp": "2024-01-02T00:00:00Z",
         "context": {"device": {"type": "tablet"}, "os": {"name": "Android"}, "campaign": {"name": "summer"}}},
        {"type": "track", "userId": "u1", "event": "Email Opened", "timestamp": "2024-01-03T00:00:00Z"},
        {"type": "track", "userId": "u1", "event": "Order Completed", "timestamp": "2024-01-04T00:00:00Z", "context": {"channel": "store"}},
        {"type": "group", "userId": "u1", "groupId": "acme", "timestamp": "2024-01-05T00:00:00Z", "traits": {"name": "Acme Ltd", "industry": "Retail"}},
        {"type": "group", "userId": "u1", "groupId": "globex", "timestamp": "2024-02-05T00:00:00Z", "traits": {"name": "Globex"}},
        {"type": "identify", "userId": "u2"},
    )
    workspace.profiles.build()
    computed = workspace.profiles.show("u1")["computed"]
    assert computed["channels"] == ["app", "email", "store", "web"]
    assert computed["device_types"] == ["mobile", "tablet"] and computed["operating_systems"] == ["Android", "iOS"]
    assert computed["locales"] == ["en-GB"] and computed["last_campaign"] == "summer"
    assert (computed["company"], computed["group_id"]) == ("Globex", "globex")
    assert computed["industry"] == "Retail"  # the latest group call that named one
    empty = workspace.profiles.show("u2")["computed"]
    assert empty["channels"] == [] and empty["company"] is None and empty["last_campaign"] is None


def test_source_priority_beats_recency(store_path: Path) -> None:
    from patron.config import Settings

    with Workspace(Settings(store=store_path, profile_source_priority=["crm"])) as ws:
        send(ws, {"type": "identify", "userId": "u1", "timestamp": "2024-01-01T00:00:00Z", "traits": {"lastName": "Smith", "plan": "gold"}}, source="crm")
        send(ws, {"type": "identify", "userId": "u1", "timestamp": "2024-05-01T00:00:00Z", "traits": {"lastName": "smth", "plan": "free", "city": "York"}}, source="web")
        ws.profiles.build()
        traits = ws.profiles.show("u1")["traits"]
        assert (traits["lastName"]["value"], traits["lastName"]["source_id"]) == ("Smith", "crm")
        assert traits["plan"]["value"] == "gold"
        assert traits["city"]["value"] == "York"  # only the web had it
    with Workspace(Settings(store=store_path)) as ws:  # without a priority, the latest wins
        ws.profiles.build(resolve=False)
        assert ws.profiles.show("u1")["traits"]["lastName"]["value"] == "smth"


def test_browsers_and_favourite_category_and_brand(workspace: Workspace) -> None:
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
    safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    send(
        workspace,
        {"type": "page", "userId": "u1", "context": {"userAgent": chrome}},
        {"type": "page", "userId": "u1", "context": {"userAgent": safari}},
        {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"category": "shoes", "brand": "Acme"}},
        {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"category": "shoes", "brand": "Zeta"}},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"products": [{"category": "hats", "brand": "Zeta"}]}},
        {"type": "track", "userId": "u1", "event": "Searched", "properties": {"category": "hats"}},  # not a product event
        {"type": "track", "userId": "u1", "event": "Product Viewed", "properties": {"category": "bags", "brand": "Best"}},
    )
    workspace.profiles.build()
    computed = workspace.profiles.show("u1")["computed"]
    assert computed["browsers"] == ["Chrome", "Safari"]
    assert computed["top_category"] == "shoes" and computed["top_brand"] == "Zeta"
    # Ranked: most frequent first, then equally frequent ones by name.
    assert computed["top_categories"] == ["shoes", "bags", "hats"]
    assert computed["top_brands"] == ["Zeta", "Acme", "Best"]
    assert workspace.profiles.show("user_id:u1")["computed"]["top_categories"][0] == computed["top_category"]


def test_declared_traits_merge_or_are_computed_again(workspace: Workspace) -> None:
    """A trait with a merge and one derived from it stay exact when merged; a trait with
    neither makes every changed profile be computed again from all its events."""
    from patron.profiles.computed import ADD, DEFAULT_COMPUTED_TRAITS, ComputedTrait
    from patron.profiles.service import Profiles

    refunds = ComputedTrait("refunds", "Refunds", lambda e: e.count(where=e.event == "Order Refunded"), merge=ADD)
    rate = ComputedTrait("refund_rate", "Refunds per order", None, derive=lambda row: row["refunds"] / row["order_count"])
    slow = ComputedTrait("refunds_slow", "Refunds, no merge", lambda e: e.count(where=e.event == "Order Refunded"))
    with pytest.raises(ValueError, match="exactly one"):
        ComputedTrait("both", "", lambda e: e.count(), derive=lambda row: row["refunds"])

    def profiles(*extra: ComputedTrait) -> Profiles:
        return Profiles(workspace.store, workspace.identity, workspace.tombstones, DEFAULT_COMPUTED_TRAITS + extra)

    refund = {"type": "track", "userId": "u1", "event": "Order Refunded", "timestamp": "2024-05-01T00:00:00Z"}
    send(workspace, order("u1", "2024-04-01", 20.0, "o-1"), order("u1", "2024-04-02", 20.0, "o-2"), refund)
    fast = profiles(refunds, rate)
    fast.build()
    send(workspace, {**refund, "messageId": "r-2", "timestamp": "2024-05-02T00:00:00Z"}, order("u1", "2024-05-03", 5.0, "o-3"))
    report = fast.build()
    assert (report.mode, report.merged, report.recomputed) == ("incremental", 1, 0)
    computed = fast.show("user_id:u1")["computed"]
    assert (computed["refunds"], computed["order_count"], computed["refund_rate"]) == (2, 3, 2 / 3)
    assert not any(name.startswith("_") for name in computed)  # the build's state stays hidden

    slower = profiles(refunds, rate, slow)
    slower.build()  # new declarations: a full build
    send(workspace, {**refund, "messageId": "r-3", "timestamp": "2024-05-04T00:00:00Z"})
    report = slower.build()
    assert (report.mode, report.merged, report.recomputed) == ("incremental", 0, 1)
    computed = slower.show("user_id:u1")["computed"]
    assert computed["refunds"] == computed["refunds_slow"] == 3
