"""Segments on a real store: saving, refreshing (incrementally and fully), membership
history at a point in time, static lists, references between segments, warnings."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from patron.segments.ast import Duration
from patron.segments.exceptions import (
    SegmentCycle,
    SegmentError,
    SegmentExists,
    SegmentQueryError,
    UnknownSegment,
)
from patron.segments.service import HISTORY
from patron.workspace import Workspace
from tests.identity.test_graph import send
from tests.segments.conftest import NOW, Clock, identify, matching, track, user_ids


def members(ws: Workspace, name: str, at: datetime | date | None = None) -> set[str]:
    return user_ids(ws, ws.segments.members(name, at)["profile_id"].to_pylist())


def history(ws: Workspace, name: str) -> list[tuple[str, str, str]]:
    table = ws.store.table(HISTORY)
    rows = ws.store.to_pyarrow(table.filter(table.segment == name).order_by(["at", "profile_id"])).to_pylist()
    owners = {p: u for p, u in ((r["profile_id"], next(iter(user_ids(ws, [r["profile_id"]])), "?")) for r in rows)}
    return [(owners[r["profile_id"]], r["change"], r["cause"]) for r in rows]


def test_a_dynamic_segment_holds_what_its_query_matches_and_records_the_entries(shop: Workspace) -> None:
    created = shop.segments.create("us", "country = 'US'", description="Customers in the US")
    assert created["size"] == 3 and created["kind"] == "dynamic" and created["description"] == "Customers in the US"
    assert members(shop, "us") == {"u1", "u4", "u8"}
    assert sorted(history(shop, "us")) == [("u1", "enter", "created"), ("u4", "enter", "created"), ("u8", "enter", "created")]
    listed = shop.segments.all()
    assert [(s.name, s.size, s.time_dependent) for s in listed] == [("us", 3, False)]
    rows = shop.segments.members("us").to_pylist()
    assert {r["email"] for r in rows} == {"u1@shop.com", "u4@example.com", "u8@shop.com"}
    assert all(r["entered_at"] == NOW for r in rows)


def test_new_events_move_profiles_in_and_out_incrementally(shop: Workspace, clock: Clock) -> None:
    segments = shop.segments
    segments.create("big-spenders", "total_revenue >= 100")
    segments.create("germans", "country = 'DE'")
    assert members(shop, "big-spenders") == {"u1", "u3"}
    clock.advance(minutes=5)
    send(shop, track("u8", "Order Completed", "2024-06-29", "o8-2", revenue=50.0),
         identify("u7", {"country": "AT"}, day="2024-06-29"),
         identify("u9", {"email": "u9@shop.com", "country": "DE"}, day="2024-06-29"))  # fmt: skip
    report = segments.refresh()
    assert report.mode == "incremental" and report.changed_profiles == 3
    assert report.segments["big-spenders"] == {"mode": "incremental", "entered": 1, "exited": 0, "size": 3}
    assert report.segments["germans"] == {"mode": "incremental", "entered": 1, "exited": 1, "size": 2}
    assert members(shop, "big-spenders") == {"u1", "u3", "u8"} == matching(shop, "total_revenue >= 100")
    assert members(shop, "germans") == {"u6", "u9"}
    assert ("u7", "exit", "profile changed") in history(shop, "germans")
    # Nothing new: nothing evaluated.
    assert shop.segments.refresh().segments == {}


def test_membership_at_a_past_moment(shop: Workspace, clock: Clock) -> None:
    shop.segments.create("germans", "country = 'DE'")
    first = clock.now
    clock.advance(days=2)
    send(shop, identify("u7", {"country": "AT"}, day="2024-06-29"))
    shop.segments.refresh()
    clock.advance(days=3)
    send(shop, identify("u7", {"country": "DE"}, day="2024-06-30"), identify("u6", {"country": "FR"}, day="2024-06-30"))
    shop.segments.refresh()
    assert members(shop, "germans") == {"u7"}
    assert members(shop, "germans", first) == {"u6", "u7"}
    assert members(shop, "germans", first + timedelta(days=2)) == {"u6"}
    assert members(shop, "germans", (first + timedelta(days=2)).date()) == {"u6"}  # the end of that day
    assert members(shop, "germans", first - timedelta(seconds=1)) == set()  # before the segment existed
    assert members(shop, "germans", clock.now) == {"u7"}
    entered = {r["profile_id"]: r["entered_at"] for r in shop.segments.members("germans", first + timedelta(days=2)).to_pylist()}
    assert list(entered.values()) == [first]
    with pytest.raises(UnknownSegment):
        shop.segments.members("nope", first)


def test_incremental_refresh_gives_what_a_full_evaluation_gives(shop: Workspace, clock: Clock) -> None:
    queries = {
        "q1": "order_count >= 2 AND NOT country = 'US'",
        "q2": "performed('Order Completed', count >= 2, within 60d)",
        "q3": "tags CONTAINS 'vip' OR age > 40",
        "q4": "performed('Product Viewed') then performed('Order Completed') within 10d",
        "q5": "in_segment('q1') OR in_segment('q3')",
        "q6": "stopped performing('Order Completed', for 60d)",
    }
    for name, query in queries.items():
        shop.segments.create(name, query)
    rng = random.Random(5)
    users = [f"u{i}" for i in range(1, 13)]  # u9..u12 are new
    for batch in range(4):
        messages = []
        for n in range(8):
            user = rng.choice(users)
            kind = rng.random()
            day = f"2024-06-{rng.randint(1, 29):02d}"
            if kind < 0.4:
                messages.append(track(user, "Order Completed", day, f"b{batch}-{n}", revenue=rng.choice([5.0, 60.0, 120.0])))
            elif kind < 0.7:
                messages.append(track(user, "Product Viewed", day, f"b{batch}-{n}", category="shoes"))
            else:
                messages.append(identify(user, {"country": rng.choice(["US", "DE", "FR"]), "age": rng.randint(20, 60)},
                                         day=day) | {"messageId": f"b{batch}-{n}"})  # fmt: skip
        if batch == 2:  # u10's anonymous visits, then u10 logs in: two profiles merge
            messages.append({"type": "track", "anonymousId": "anon-10", "event": "Order Completed", "messageId": "m-anon",
                             "properties": {"revenue": 200.0}, "timestamp": "2024-06-20T10:00:00Z"})  # fmt: skip
            messages.append({"type": "identify", "userId": "u10", "anonymousId": "anon-10", "messageId": "m-merge",
                             "timestamp": "2024-06-21T10:00:00Z", "traits": {"country": "FR"}})  # fmt: skip
        send(shop, *messages)
        clock.advance(minutes=10)  # within the hour: time-dependent segments stay incremental
        report = shop.segments.refresh()
        assert report.mode == "incremental"
        assert {s["mode"] for s in report.segments.values()} == {"incremental"}
        for name, query in queries.items():
            assert members(shop, name) == matching(shop, query), (batch, name)


def test_time_dependent_segments_are_evaluated_again_as_the_clock_moves(shop: Workspace, clock: Clock) -> None:
    shop.segments.create("recent", "performed('Order Completed', within 15d)")
    shop.segments.create("us", "country = 'US'")
    assert members(shop, "recent") == {"u1", "u5", "u8"}  # u1's order: 15 days ago to the second
    assert shop.segments.get("recent").time_dependent and not shop.segments.get("us").time_dependent
    clock.advance(minutes=30)
    assert shop.segments.refresh().segments == {}  # no change, and the last full evaluation is recent
    clock.advance(days=6)  # 20 June is now more than 15 days ago
    report = shop.segments.refresh()
    assert report.segments == {"recent": {"mode": "full", "entered": 0, "exited": 3, "size": 0}}
    assert ("u5", "exit", "refresh") in history(shop, "recent")


def test_a_full_refresh_evaluates_everything(shop: Workspace) -> None:
    shop.segments.create("us", "country = 'US'")
    report = shop.segments.refresh(full=True)
    assert report.mode == "full" and report.segments["us"] == {"mode": "full", "entered": 0, "exited": 0, "size": 3}


def test_a_static_segment_from_a_query_is_frozen(shop: Workspace) -> None:
    shop.segments.create("us-then", "country = 'US'", static=True)
    send(shop, identify("u2", {"country": "US"}, day="2024-06-29"))
    shop.segments.refresh()
    assert members(shop, "us-then") == {"u1", "u4", "u8"}
    assert matching(shop, "country = 'US'") == {"u1", "u2", "u4", "u8"}
    with pytest.raises(SegmentError, match="static segment"):
        shop.segments.update("us-then", query="country = 'GB'")


def test_a_static_segment_from_a_file_of_ids(shop: Workspace, tmp_path: Path) -> None:
    profile_u3 = shop.identity.profile_id("user_id:u3")
    path = tmp_path / "list.csv"
    path.write_text(f"email\n  U1@Shop.com \nu2@shop.com\nnobody@nowhere.com\n{profile_u3}\nu4\n\n")
    created = shop.segments.create("uploaded", ids=path, description="from the CRM")
    assert members(shop, "uploaded") == {"u1", "u2", "u3", "u4"}
    assert created["unmatched"] == 1 and created["unmatched_sample"] == ["nobody@nowhere.com"]
    assert any("match no profile" in w for w in created["warnings"])
    headerless = tmp_path / "bare.csv"
    headerless.write_text("u5@shop.com\nu6\n")
    shop.segments.create("bare", ids=headerless)
    assert members(shop, "bare") == {"u5", "u6"}
    empty = tmp_path / "empty.csv"
    empty.write_text("email\n")
    with pytest.raises(SegmentError, match="lists no ids"):
        shop.segments.create("empty", ids=empty)


def test_static_members_follow_a_merge(shop: Workspace) -> None:
    send(shop, {"type": "track", "anonymousId": "visitor-7", "event": "Product Viewed", "messageId": "pv-anon",
                "timestamp": "2024-06-01T10:00:00Z", "properties": {}})  # fmt: skip
    shop.profiles.build()
    visitor = shop.identity.profile_id("anonymous_id:visitor-7")
    shop.segments.create("visitors", profile_ids=[visitor], origin="upload")
    send(shop, {"type": "identify", "userId": "u7", "anonymousId": "visitor-7", "messageId": "merge-7",
                "timestamp": "2024-06-02T10:00:00Z", "traits": {}})  # fmt: skip
    shop.segments.refresh()
    merged = shop.identity.profile_id("user_id:u7")
    assert shop.segments.members("visitors")["profile_id"].to_pylist() == [merged]
    assert [c for _, c, cause in history(shop, "visitors") if cause == "profile merged"] == ["enter", "exit"] or \
        sorted(c for _, c, cause in history(shop, "visitors") if cause == "profile merged") == ["enter", "exit"]


def test_segments_can_use_segments_but_never_themselves(shop: Workspace) -> None:
    segments = shop.segments
    segments.create("us", "country = 'US'")
    segments.create("buyers", "order_count >= 1")
    segments.create("us-buyers", "in_segment('us') AND in_segment('buyers')")
    assert members(shop, "us-buyers") == {"u1", "u8"}
    assert segments.show("us")["used_by"] == ["us-buyers"]
    with pytest.raises(SegmentCycle, match="us -> us-buyers -> us"):
        segments.update("us", query="in_segment('us-buyers')")
    with pytest.raises(SegmentCycle, match="loop -> loop"):
        segments.create("loop", "in_segment('loop')")
    with pytest.raises(SegmentQueryError, match="in_segment names no segment 'vip'"):
        segments.create("x", "in_segment('vip')")
    with pytest.raises(SegmentError, match="used by us-buyers"):
        segments.delete("us")
    # A change to a used segment reaches the one that uses it in the same refresh.
    send(shop, identify("u2", {"country": "US"}, day="2024-06-29"))
    segments.refresh()
    assert members(shop, "us-buyers") == {"u1", "u2", "u8"}


def test_update_changes_the_query_and_records_why(shop: Workspace, clock: Clock) -> None:
    shop.segments.create("here", "country = 'US'")
    clock.advance(minutes=1)
    shown = shop.segments.update("here", query="country = 'GB'", description="now the UK")
    assert shown["query"] == "country = 'GB'" and shown["description"] == "now the UK" and shown["size"] == 1
    assert sorted(x for x in history(shop, "here") if x[2] == "redefined") == [
        ("u1", "exit", "redefined"), ("u2", "enter", "redefined"), ("u4", "exit", "redefined"), ("u8", "exit", "redefined")]  # fmt: skip


def test_delete_records_the_exits_and_the_name_can_be_used_again(shop: Workspace, clock: Clock) -> None:
    shop.segments.create("us", "country = 'US'")
    made = clock.now
    clock.advance(minutes=1)
    assert shop.segments.delete("us") == 3
    assert [s.name for s in shop.segments.all()] == []
    assert {c for _, c, cause in history(shop, "us") if cause == "deleted"} == {"exit"}
    assert members(shop, "us", made) == {"u1", "u4", "u8"}  # history survives the segment
    with pytest.raises(UnknownSegment):
        shop.segments.show("us")
    shop.segments.create("us", "country = 'US' AND age > 40")
    assert members(shop, "us") == {"u8"}


def test_overlap_and_the_warnings_against_over_and_under_segmenting(shop: Workspace) -> None:
    shop.segments.create("us", "country = 'US'")
    created = shop.segments.create("us-again", "country = 'US' AND age > 0")
    assert any("'us-again' and 'us'" in w for w in created["warnings"])
    result = shop.segments.overlap("us", "us-again")
    assert (result["both"], result["only_a"], result["jaccard"]) == (3, 0, 1.0) and result["warnings"]
    germans = shop.segments.create("germans", "country = 'DE'")
    assert shop.segments.overlap("us", "germans")["both"] == 0 and not shop.segments.overlap("us", "germans")["warnings"]
    assert germans["warnings"] == []
    nobody = shop.segments.preview("country = 'JP'")
    assert nobody.count == 0 and "matches no one" in nobody.warnings[0]
    everyone = shop.segments.preview("event_count >= 1")
    assert everyone.share == 1.0 and "nearly everyone" in everyone.warnings[0]


def test_size_warnings_for_small_segments() -> None:
    from patron.segments.service import size_warnings

    assert "too small to act on" in size_warnings(5, 10_000)[0]
    assert size_warnings(150, 10_000) == []  # above the count, even if under 1 %
    assert size_warnings(50, 1_000) == []  # 5 %: small, but a real share of a small shop


@pytest.mark.parametrize(
    ("name", "query", "words"),
    [("bad name", "country = 'US'", "must be 1-100 letters"), ("-x", "country = 'US'", "not starting with"),
     ("ok", "country = ", "expected a value"), ("ok", "agee > 3", "unknown attribute 'agee'")],
)  # fmt: skip
def test_create_refuses_bad_names_and_queries_and_writes_nothing(shop: Workspace, name: str, query: str, words: str) -> None:
    with pytest.raises(SegmentError, match=words):
        shop.segments.create(name, query)
    assert shop.segments.all() == []


def test_create_refuses_a_taken_name_and_needs_one_source(shop: Workspace, tmp_path: Path) -> None:
    shop.segments.create("us", "country = 'US'")
    with pytest.raises(SegmentExists):
        shop.segments.create("us", "country = 'GB'")
    with pytest.raises(SegmentError, match="exactly one"):
        shop.segments.create("both", "country = 'GB'", ids=tmp_path / "x.csv")


def test_the_evaluation_instant_can_be_fixed(shop: Workspace) -> None:
    shop.segments.create("recent-then", "performed('Order Completed', within 30d)", as_of=datetime(2024, 1, 31))
    assert members(shop, "recent-then") == {"u1", "u3"}


def test_an_erased_person_leaves_no_segment_rows(shop: Workspace, clock: Clock) -> None:
    shop.segments.create("us", "country = 'US'")
    send(shop, identify("u2", {"country": "US"}, day="2024-06-29"))
    shop.segments.refresh()
    u1 = shop.identity.profile_id("user_id:u1")
    receipt = shop.profiles.erase("user_id:u1")
    assert receipt.profile_id == u1
    table = shop.store.table(HISTORY)
    assert shop.store.execute(table.filter(table.profile_id == u1).count()) == 0
    assert u1 not in shop.segments.members("us")["profile_id"].to_pylist()
    assert u1 not in shop.segments.members("us", clock.now)["profile_id"].to_pylist()
    assert members(shop, "us") == {"u2", "u4", "u8"}
    shop.segments.refresh()
    assert members(shop, "us") == {"u2", "u4", "u8"}


def test_ids_that_look_like_numbers_stay_text(shop: Workspace, tmp_path: Path) -> None:
    send(shop, identify("007", {"email": "bond@shop.com"}))
    shop.profiles.build()
    path = tmp_path / "ids.csv"
    path.write_text("user_id\n007\n")
    shop.segments.create("agents", ids=path)
    assert members(shop, "agents") == {"007"}


RFM_QUERIES = {
    "loyal": "rfm_group = 'Loyal Customers'",
    "loyal-us": "in_segment('loyal') AND country = 'US'",
    "top-spend": "m_score = 5",
    "frequent": "f_score >= 4",
    "recent": "r_score >= 4",
}


def test_rfm_segments_follow_scores_moved_by_other_customers_orders(shop: Workspace, clock: Clock) -> None:
    # RFM scores rank customers against each other: one customer's new orders can move
    # another's score without any event of theirs. The refresh finds those from the cuts
    # the segments were evaluated with, and evaluates them with the changed profiles.
    for name, query in RFM_QUERIES.items():
        shop.segments.create(name, query)
    shop.segments.create("us", "country = 'US'")
    before = {name: members(shop, name) for name in RFM_QUERIES}
    clock.advance(minutes=5)
    send(shop, *[track("u8", "Order Completed", "2024-06-2" + str(d), f"o8-more-{d}", revenue=500.0) for d in range(1, 9)])
    report = shop.segments.refresh()
    assert {report.segments[name]["mode"] for name in [*RFM_QUERIES, "us"]} == {"incremental"}
    assert report.changed_profiles is not None and report.changed_profiles > 1  # u8, and those u8 moved
    for name, query in RFM_QUERIES.items():
        assert members(shop, name) == matching(shop, query), name
    others = {name: (before[name] ^ members(shop, name)) - {"u8"} for name in RFM_QUERIES}
    assert any(others.values())  # someone without a new event entered or left
    # A full evaluation finds nothing more to change.
    check = shop.segments.refresh(full=True)
    assert all(not (e["entered"] or e["exited"]) for e in check.segments.values())
    # Nothing new and the clock barely moved: nothing to evaluate, RFM included. Recency
    # moves with the clock, so RFM segments are time-dependent: evaluated again once
    # their last full evaluation is older than time_refresh.
    assert shop.segments.get("loyal").time_dependent
    clock.advance(minutes=5)
    assert shop.segments.refresh().segments == {}
    clock.advance(hours=2)
    again = shop.segments.refresh()
    assert again.segments["loyal"]["mode"] == "full" and again.segments["loyal-us"]["mode"] == "full"
    assert "us" not in again.segments


def test_without_the_cuts_of_its_last_evaluation_an_rfm_segment_is_evaluated_over_everyone(
    shop: Workspace, clock: Clock
) -> None:  # fmt: skip
    shop.segments.create("loyal", RFM_QUERIES["loyal"])
    shop.store.set_meta("segment_rfm_cuts:loyal", "")  # as a store from before the cuts were kept
    clock.advance(minutes=5)
    send(shop, track("u8", "Order Completed", "2024-06-21", "o8-more", revenue=500.0))
    assert shop.segments.refresh().segments["loyal"]["mode"] == "full"
    assert members(shop, "loyal") == matching(shop, RFM_QUERIES["loyal"])


def test_a_segment_using_one_the_clock_moved_follows_it(shop: Workspace, clock: Clock) -> None:
    shop.segments.create("recent", "performed('Order Completed', within 15d)")
    shop.segments.create("recent-us", "in_segment('recent') AND country = 'US'")
    assert members(shop, "recent-us") == {"u1", "u8"}
    clock.advance(days=6)  # no new event: only the clock moves "recent"
    report = shop.segments.refresh()
    assert report.segments["recent"]["mode"] == "full" and report.segments["recent-us"]["mode"] == "full"
    assert members(shop, "recent-us") == set() == matching(shop, "in_segment('recent') AND country = 'US'")


def test_events_are_read_from_as_far_back_as_any_segment_needs(shop: Workspace) -> None:
    # One segment reads the views of the last week only, the other every view ever (the
    # blue one is two months old): evaluated together, each still gets its own answer.
    recent, ever = "performed('Product Viewed', count >= 3, within 7d)", "performed('Product Viewed', where category = 'shoes', count >= 4)"
    shop.segments.create("recent-viewers", recent)
    shop.segments.create("shoe-fans", ever)
    report = shop.segments.refresh(full=True)
    assert report.segments["recent-viewers"]["size"] == 1 and report.segments["shoe-fans"]["size"] == 1
    assert members(shop, "recent-viewers") == {"u1"} == matching(shop, recent)
    assert members(shop, "shoe-fans") == {"u1"} == matching(shop, ever)
    needs = shop.segments.check(recent)[1]
    assert needs.event_windows == {"Product Viewed": [Duration(7, "d")]}
    assert shop.segments.check(f"{recent} OR {ever}")[1].event_windows == {"Product Viewed": [Duration(7, "d"), None]}
