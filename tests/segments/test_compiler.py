"""The segment language evaluated on a real store: each operator, the NULL rule, every
date form and each behavioral condition against answers worked out by hand from the
shop in conftest.py (today is 2024-06-30)."""

from __future__ import annotations

from datetime import datetime

import pytest

from patron.segments.exceptions import SegmentQueryError
from patron.workspace import Workspace
from tests.segments.conftest import matching

EVERYONE = {f"u{i}" for i in range(1, 9)}

CASES: list[tuple[str, set[str]]] = [
    # strings, and the NULL rule: u3 has no country
    ("country = 'US'", {"u1", "u4", "u8"}),
    ("country != 'US'", {"u2", "u5", "u6", "u7"}),
    ("country <> 'US'", {"u2", "u5", "u6", "u7"}),
    ("NOT country = 'US'", {"u2", "u3", "u5", "u6", "u7"}),
    ("country IN ('GB', 'FR')", {"u2", "u5"}),
    ("country NOT IN ('US', 'GB')", {"u5", "u6", "u7"}),
    ("NOT country IN ('US', 'GB')", {"u3", "u5", "u6", "u7"}),
    ("country IS NULL", {"u3"}),
    ("country IS NOT NULL", EVERYONE - {"u3"}),
    ("plan MATCHES '^p'", {"u1"}),
    ("plan MATCHES '(?i)FREE'", {"u2", "u3"}),
    ("plan NOT MATCHES '^f'", {"u1"}),
    ("email CONTAINS '@example.com'", {"u4"}),
    ("email NOT CONTAINS '@shop.com'", {"u4"}),
    ("address.city = 'Leeds'", {"u2"}),
    ("traits.plan = 'pro'", {"u1"}),
    # numbers: u3's age is the text 'unknown', so it is no number
    ("age > 30", {"u1", "u2", "u5", "u7", "u8"}),
    ("age <= 29", {"u4", "u6"}),
    ("age BETWEEN 29 AND 34", {"u1", "u6", "u7"}),
    ("age NOT BETWEEN 29 AND 34", {"u2", "u4", "u5", "u8"}),
    ("age = 34.0", {"u1"}),
    ("age IN (22, 45)", {"u4", "u8"}),
    ("order_count >= 3", {"u1", "u3", "u5"}),
    ("total_revenue > 100", {"u1", "u3"}),
    # booleans
    ("beta = true", {"u1"}),
    ("beta != true", {"u2"}),
    # lists: u2, u5..u8 have no tags at all; u3 has an empty list
    ("tags CONTAINS 'vip'", {"u1"}),
    ("tags NOT CONTAINS 'vip'", {"u3", "u4"}),
    ("tags IN ('vip', 'student')", {"u1", "u4"}),
    ("tags NOT IN ('vip', 'student')", {"u3"}),
    ("channels CONTAINS 'web'", set()),
    # precedence: NOT over AND over OR
    ("age >= 40 OR country = 'DE'", {"u2", "u5", "u8", "u6", "u7"}),
    ("country = 'US' AND age > 30 OR country = 'DE'", {"u1", "u8", "u6", "u7"}),
    ("country = 'US' AND (age > 30 OR country = 'DE')", {"u1", "u8"}),
    ("NOT country = 'US' AND age > 30", {"u2", "u5", "u7"}),
    # dates: a timestamp compared with a date is compared by its day
    ("last_order_at >= -30d", {"u1", "u5", "u6", "u7", "u8"}),
    ("last_order_at >= 30_days_ago", {"u1", "u5", "u6", "u7", "u8"}),
    ("last_order_at < 2024-01-01", {"u2"}),
    ("last_order_at = 2024-06-20", {"u5", "u8"}),
    ("last_order_at > 2024-06-20T11:59:59Z", {"u5", "u8"}),
    ("last_order_at > 2024-06-20T12:00:00", set()),
    ("first_order_at BETWEEN 2023-01-01 AND 2023-01-31", {"u2", "u5"}),
    ("last_seen >= -1m", {"u1", "u4", "u5", "u6", "u7", "u8"}),
    ("last_seen < -5m", {"u2", "u3"}),
    ("last_seen < -6m", set()),
    ("last_seen >= -1y AND last_seen < -6m", set()),
    ("first_order_at < -2w AND first_order_at >= -3w", {"u6", "u7"}),
    ("last_order_at >= yesterday", set()),
    ("last_order_at <= now", {"u1", "u2", "u3", "u5", "u6", "u7", "u8"}),
    # anniversaries: relative ranges compare month and day; absolute dates whole dates
    ("birthday BETWEEN today AND +7d", {"u1"}),
    ("birthday < 1980-01-01", {"u2"}),
    ("anniversary(first_order_at) BETWEEN -30d AND today", {"u6", "u7", "u8"}),
    # behavioral
    ("performed('Product Viewed', count >= 3, within 7d, where category = 'shoes')", {"u1"}),
    ("performed('Product Viewed', within 7d, count >= 3, where category = 'shoes')", {"u1"}),
    ("performed('Product Viewed', count >= 4)", {"u1"}),
    ("performed('Product Viewed')", {"u1", "u4"}),
    ("performed('Order Completed', count < 2)", {"u2", "u4", "u6", "u7", "u8"}),
    ("performed('Order Completed', count = 0)", {"u4"}),
    ("not performed('Order Completed', within 90d)", {"u2", "u3", "u4"}),
    ("first performed('Order Completed', within 15d)", {"u8"}),
    ("stopped performing('Order Completed', for 90d)", {"u2", "u3"}),
    ("restarted performing('Order Completed', after 90d, within 30d)", {"u5"}),
    ("restarted performing('Order Completed', after 1y, within 30d)", {"u5"}),  # 505 days
    ("restarted performing('Order Completed', after 2y, within 30d)", set()),
    ("performed('Product Added') then performed('Order Completed') within 1d", {"u6"}),
    ("performed('Product Added') then performed('Order Completed') within 1h", {"u6"}),
    ("performed('Product Added') then performed('Order Completed') within 30h", {"u6"}),
    ("performed('Product Viewed', within 36h)", {"u1"}),
    ("performed('Product Added') then performed('Order Completed')", {"u6", "u7"}),
    ("performed('Product Viewed') then performed('Order Completed')", {"u1"}),
    # u1's second view (25 June) came after its last order (15 June)
    ("performed('Product Viewed') then performed('Product Viewed') then performed('Order Completed')", set()),
    ("performed('Order Completed') then performed('Order Completed') within 1d", set()),
    ("performed('Order Completed') then performed('Order Completed') within 35d", {"u1", "u3", "u5"}),
    ("performed('Product Viewed', where properties.color = 'red')", {"u1", "u4"}),
    ("performed('Product Viewed', where properties.color = 'blue')", {"u1"}),
    ("performed('Product Viewed', where NOT category = 'shoes')", {"u4"}),
    ("performed('Order Completed', where revenue > 105)", {"u1"}),
    ("performed('Order Completed', where revenue BETWEEN 50 AND 70 AND timestamp >= 2024-01-01)", {"u3"}),
    # RFM attributes (rfm.py's own tests check the scores)
    ("rfm_group = 'Prospects'", {"u4"}),
    ("r_score >= 1", EVERYONE - {"u4"}),
    ("rfm_score IS NULL", {"u4"}),
]


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[c[0] for c in CASES])
def test_query_matches_the_worked_answer(shop_once: Workspace, query: str, expected: set[str]) -> None:
    assert matching(shop_once, query) == expected


@pytest.mark.parametrize(
    ("as_of", "query", "expected"),
    [
        # across the year end: 28 December to 4 January holds u2's 1 January birthday
        (datetime(2024, 12, 28, 9), "birthday BETWEEN today AND +7d", {"u2"}),
        (datetime(2024, 12, 28, 9), "birthday BETWEEN -7d AND today", set()),
        # 29 February counts on 28 February in years without one
        (datetime(2025, 2, 27, 9), "birthday BETWEEN today AND +1d", {"u5"}),
        (datetime(2024, 2, 28, 9), "birthday = today", set()),
        (datetime(2024, 2, 28, 9), "birthday = tomorrow", {"u5"}),
        # with a relative date among them, every value is an anniversary
        (datetime(2024, 2, 28, 9), "birthday IN (+1d, 2024-07-03)", {"u1", "u5"}),
        # a year or more: every birthday
        (datetime(2024, 2, 28, 9), "birthday BETWEEN today AND +1y", {"u1", "u2", "u5"}),
        # as of a past day, later events are left out
        (datetime(2024, 1, 31, 0), "performed('Order Completed', within 30d)", {"u1", "u3"}),
        (datetime(2023, 12, 31, 0), "stopped performing('Order Completed', for 30d)", {"u2", "u3", "u5"}),
    ],
)
def test_relative_dates_follow_the_evaluation_day(shop_once: Workspace, as_of: datetime, query: str, expected: set[str]) -> None:
    assert matching(shop_once, query, as_of=as_of) == expected


def test_the_same_query_at_another_day_differs(shop_once: Workspace) -> None:
    # (computed traits are over all the data: only the clock moves)
    assert matching(shop_once, "last_order_at >= -30d", as_of=datetime(2024, 1, 20)) == EVERYONE - {"u2", "u4"}


@pytest.mark.parametrize(
    ("query", "column", "words"),
    [
        ("agee > 3", 1, "unknown attribute 'agee' (did you mean 'age'?)"),
        ("age > 'abc'", 7, "age is a number; 'abc' is text"),
        ("country > 3", 11, "country is text; 3 is a number (write '3' in quotes"),
        ("last_order_at > '2024-01-01'", 17, "write dates without quotes"),
        ("last_order_at > 3", 17, "last_order_at is a date; 3 is a number"),
        ("tags = 'vip'", 1, "tags is a list; use CONTAINS"),
        ("order_count CONTAINS 'x'", 1, "CONTAINS needs text or a list; order_count is a number"),
        ("beta > true", 1, "beta is true or false; use = or !="),
        ("country = null", 11, "IS NULL"),
        ("address = 'Leeds'", 1, "address is an object; name a field inside it"),
        ("birthday > today", 1, "an anniversary (birthday) takes =, BETWEEN or IN"),
        ("anniversary(age) = today", 1, "anniversary() needs a date"),
        ("performed('Product Viewed', where colour = 'red')", 35, "unknown event field 'colour'"),
        ("performed('Product Viewed', where category > 3)", 46, "category is text"),
        ("in_segment('nope')", 1, "in_segment names no segment 'nope'"),
        ("country = 'US' AND\n  agee > 3", 3, "unknown attribute 'agee'"),
    ],
)
def test_a_bad_query_names_the_token_its_column_and_what_was_expected(
    shop_once: Workspace, query: str, column: int, words: str
) -> None:
    with pytest.raises(SegmentQueryError) as caught:
        shop_once.segments.preview(query)
    assert caught.value.column == column, str(caught.value)
    assert words in str(caught.value)
    assert f"column {column}" in str(caught.value)


def test_an_error_on_a_later_line_names_the_line(shop_once: Workspace) -> None:
    with pytest.raises(SegmentQueryError, match=r"line 2, column 3: unknown attribute 'agee'"):
        shop_once.segments.preview("country = 'US' AND\n  agee > 3")
