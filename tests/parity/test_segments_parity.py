"""Segments and RFM are DuckDB's on every backend: each kind of clause and behavioral
condition, RFM scores and summary, and a create, refresh and point-in-time read."""

from __future__ import annotations

from patron.workspace import Workspace
from tests.identity.test_incremental import store as collect
from tests.parity.conftest import Pipeline
from tests.parity.rfm_checks import check_rfm
from tests.parity.rfm_checks import shop_messages as rfm_messages
from tests.segments.conftest import NOW, Clock, identify, shop_messages, track, user_ids

#: One query per way the compiler builds an expression (tests/segments/test_compiler.py
#: checks each against answers worked out by hand; here the engines must agree).
QUERIES = (
    "country != 'US' OR country IS NULL",
    "NOT country IN ('US', 'GB') AND age BETWEEN 20 AND 45",
    "tags CONTAINS 'vip' OR tags IN ('student')",
    "address.city = 'Leeds' OR plan MATCHES '^p' OR beta = false",
    "last_order_at >= -30d AND first_order_at < 2024-06-01",
    "birthday BETWEEN today AND +7d OR anniversary(first_order_at) BETWEEN -30d AND today",
    "performed('Product Viewed', count >= 3, within 7d, where category = 'shoes')",
    "performed('Order Completed', count < 2) AND NOT performed('Product Viewed', where properties.color = 'red')",
    "first performed('Order Completed', within 15d) OR stopped performing('Order Completed', for 90d)",
    "restarted performing('Order Completed', after 90d, within 30d)",
    "performed('Product Added') then performed('Order Completed') within 1d",
    "rfm_group IN ('Loyal Customers', 'At Risk') OR r_score >= 4",
)


def test_segments_and_rfm_are_the_same(pipeline: Pipeline, reference: Workspace) -> None:
    """One Spark build for everything (each costs most of a minute): every kind of
    condition, RFM scores and summary, then create, refresh and history."""
    messages = shop_messages() + rfm_messages(7)
    pipeline.collect(messages)
    collect(reference, messages)
    ws = pipeline.workspace
    clocks = {}
    for w in (ws, reference):
        w.profiles.build()
        clocks[id(w)] = w.segments.clock = Clock(NOW)
    for query in QUERIES:
        got = ws.segments.preview(query, sample=1000)
        expected = reference.segments.preview(query, sample=1000)
        assert user_ids(ws, [r["profile_id"] for r in got.sample]) == user_ids(
            reference, [r["profile_id"] for r in expected.sample]
        ), query
        assert got.count == expected.count > 0, query
    check_rfm(ws, reference, purchasers=30 + 7, prospects=6 + 1)

    for w in (ws, reference):
        w.segments.create("us", "country = 'US'")
        w.segments.create("recent", "performed('Order Completed', within 30d)")
        w.segments.create("us-recent", "in_segment('us') AND in_segment('recent')")
    later = [identify("u2", {"country": "US"}, day="2024-06-29"), track("u2", "Order Completed", "2024-06-29", "o2-new", revenue=5.0)]
    pipeline.collect(later)
    collect(reference, later)
    reports = []
    for w in (ws, reference):
        clocks[id(w)].advance(minutes=5)
        reports.append(w.segments.refresh().segments)
    assert reports[0] == reports[1] and reports[1]["us-recent"]["entered"] == 1
    for name in ("us", "recent", "us-recent"):
        now = user_ids(ws, ws.segments.members(name)["profile_id"].to_pylist())
        assert now == user_ids(reference, reference.segments.members(name)["profile_id"].to_pylist())
        then = user_ids(ws, ws.segments.members(name, NOW)["profile_id"].to_pylist())
        assert then == user_ids(reference, reference.segments.members(name, NOW)["profile_id"].to_pylist())
