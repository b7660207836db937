"""The index of message properties that segment conditions read (segments/properties.py):
filled when a segment first uses a property, kept up with new events, read instead of
the message log, and emptied of an erased person's events."""

from __future__ import annotations

from patron.segments.properties import PROPERTIES
from patron.workspace import Workspace
from tests.identity.test_graph import send
from tests.segments.conftest import Clock, matching, track, user_ids

RED_SHOES = "performed('Product Viewed', where properties.color = 'red')"


def indexed_rows(ws: Workspace) -> list[tuple[str, str]]:
    table = ws.store.table(PROPERTIES)
    return sorted((r["path"], r["value"]) for r in ws.store.to_pyarrow(table).to_pylist())


def members(ws: Workspace, name: str) -> set[str]:
    return user_ids(ws, ws.segments.members(name)["profile_id"].to_pylist())


def test_a_preview_reads_the_messages_and_writes_no_index(shop: Workspace) -> None:
    assert shop.segments.preview(RED_SHOES).count == 2
    assert not shop.store.has_table(PROPERTIES)


def test_a_segment_indexes_the_properties_it_reads_and_only_those(shop: Workspace) -> None:
    shop.segments.create("red", RED_SHOES)
    assert members(shop, "red") == {"u1", "u4"} == matching(shop, RED_SHOES)
    # Four views carry a colour (three red, one blue); nothing else is indexed.
    assert indexed_rows(shop) == [("color", "blue"), ("color", "red"), ("color", "red"), ("color", "red"), ("color", "red")]
    assert shop.segments.properties.indexed() == {("Product Viewed", "color")}


def test_new_events_reach_the_index_and_the_segment(shop: Workspace, clock: Clock) -> None:
    shop.segments.create("red", RED_SHOES)
    clock.advance(minutes=5)
    send(shop, track("u7", "Product Viewed", "2024-06-29", "v7-red", color="red"),
         track("u2", "Product Viewed", "2024-06-29", "v2-green", color="green"))  # fmt: skip
    report = shop.segments.refresh()
    assert report.segments["red"]["mode"] == "incremental" and report.segments["red"]["entered"] == 1
    assert members(shop, "red") == {"u1", "u4", "u7"} == matching(shop, RED_SHOES)
    assert ("color", "green") in indexed_rows(shop)
    # A second segment on a new property of the same event: indexed over every event.
    shop.segments.create("bags", "performed('Product Viewed', where properties.category = 'bags')")
    assert members(shop, "bags") == {"u4"}
    assert shop.segments.properties.indexed() == {("Product Viewed", "color"), ("Product Viewed", "category")}
    assert shop.segments.refresh(full=True).segments["red"]["entered"] == 0  # the index agrees with the log


def test_an_erased_persons_properties_leave_the_index(shop: Workspace) -> None:
    shop.segments.create("red", RED_SHOES)
    before = len(indexed_rows(shop))
    shop.profiles.erase("user_id:u4")  # one red view, one bag view without a colour
    assert len(indexed_rows(shop)) == before - 1
    assert members(shop, "red") == {"u1"}
