"""The segment language's parser: every clause, value, date and behavioral form becomes
the expected syntax tree, and every mistake a marketer makes gets a message naming the
token, its column and what was expected."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from patron.segments.ast import (
    And,
    Attribute,
    Between,
    Comparison,
    Condition,
    CountFilter,
    DateValue,
    Duration,
    Funnel,
    InList,
    InSegment,
    IsNull,
    Literal,
    Not,
    Or,
    Performed,
    Position,
    Restarted,
    Stopped,
    Value,
)
from patron.segments.exceptions import SegmentQueryError
from patron.segments.language import _WORDS, _parser, parse


def cmp(name: str, op: str, value: Value | str | int | float | bool | None) -> Comparison:
    literal = value if isinstance(value, Literal | DateValue) else Literal(value)
    return Comparison(Attribute(name), op, literal)


def error_of(query: str) -> SegmentQueryError:
    with pytest.raises(SegmentQueryError) as caught:
        parse(query)
    return caught.value


A = cmp("a", "=", 1)
B = cmp("b", "=", 2)
C = cmp("c", "=", 3)

# -- clauses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "op"),
    [
        ("age = 30", "="),
        ("age != 30", "!="),
        ("age <> 30", "!="),
        ("age > 30", ">"),
        ("age >= 30", ">="),
        ("age < 30", "<"),
        ("age <= 30", "<="),
        ("age CONTAINS 30", "CONTAINS"),
        ("age NOT CONTAINS 30", "NOT CONTAINS"),
    ],
)
def test_each_comparison_operator(query: str, op: str) -> None:
    assert parse(query) == cmp("age", op, 30)


def test_matches_takes_a_pattern_kept_as_typed() -> None:
    assert parse(r"email MATCHES '@gmail\.com$'") == cmp("email", "MATCHES", r"@gmail\.com$")
    assert parse(r"email not matches '^\d+'") == cmp("email", "NOT MATCHES", r"^\d+")


def test_between_and_not_between() -> None:
    assert parse("age BETWEEN 18 AND 30") == Between(Attribute("age"), Literal(18), Literal(30))
    assert parse("age NOT BETWEEN 18 AND 30") == Between(
        Attribute("age"), Literal(18), Literal(30), negated=True
    )


def test_between_inside_and_keeps_its_own_and() -> None:
    assert parse("age BETWEEN 1 AND 5 AND b = 2") == And(
        (Between(Attribute("age"), Literal(1), Literal(5)), B)
    )


def test_in_and_not_in() -> None:
    assert parse("country IN ('US', 'CA')") == InList(Attribute("country"), (Literal("US"), Literal("CA")))
    assert parse("country NOT IN ('US')") == InList(Attribute("country"), (Literal("US"),), negated=True)
    assert parse("n IN (1, 2.5, true, null)") == InList(
        Attribute("n"), (Literal(1), Literal(2.5), Literal(True), Literal(None))
    )


def test_is_null_and_is_not_null() -> None:
    assert parse("email IS NULL") == IsNull(Attribute("email"))
    assert parse("email IS NOT NULL") == IsNull(Attribute("email"), negated=True)


def test_attribute_names_dotted_backquoted_and_case_kept() -> None:
    assert parse("Address.City = 'Paris'") == cmp("Address.City", "=", "Paris")
    assert parse("`count` = 1") == cmp("count", "=", 1)
    assert parse("properties.`where` = 1") == cmp("properties.where", "=", 1)
    assert parse("_x1 = 1") == cmp("_x1", "=", 1)


def test_anniversary_attribute() -> None:
    expected = Between(
        Attribute("birthday", anniversary=True), DateValue("today"), DateValue("+7d", offset=7)
    )
    assert parse("anniversary(birthday) BETWEEN today AND +7d") == expected
    assert parse("ANNIVERSARY(signed_up_at) = today") == Comparison(
        Attribute("signed_up_at", anniversary=True), "=", DateValue("today")
    )


# -- boolean structure ------------------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    assert parse("a = 1 OR b = 2 AND c = 3") == Or((A, And((B, C))))
    assert parse("a = 1 AND b = 2 OR c = 3") == Or((And((A, B)), C))


def test_not_binds_tighter_than_and() -> None:
    assert parse("NOT a = 1 AND b = 2") == And((Not(A), B))
    assert parse("NOT NOT a = 1") == Not(Not(A))


def test_parentheses_group() -> None:
    assert parse("(a = 1 OR b = 2) AND c = 3") == And((Or((A, B)), C))
    assert parse("NOT (a = 1 OR b = 2)") == Not(Or((A, B)))
    assert parse("((a = 1))") == A


def test_same_operator_chains_are_flattened() -> None:
    assert parse("a = 1 AND b = 2 AND c = 3") == And((A, B, C))
    assert parse("a = 1 OR b = 2 OR c = 3") == Or((A, B, C))
    assert parse("(a = 1 OR b = 2) OR c = 3") == Or((A, B, C))
    assert parse("a = 1 AND (b = 2 AND c = 3)") == And((A, B, C))


def test_keywords_are_case_insensitive() -> None:
    assert parse("a = 1 and b = 2 Or c = 3") == Or((And((A, B)), C))
    assert parse("not x iS nOt NuLl") == Not(IsNull(Attribute("x"), negated=True))
    assert parse("x In (1) AND y between 1 aNd 2") == And(
        (InList(Attribute("x"), (Literal(1),)), Between(Attribute("y"), Literal(1), Literal(2)))
    )
    assert parse("PERFORMED('X', WITHIN 7D, COUNT >= 2)") == Performed(
        "X", count=CountFilter(">=", 2), within=Duration(7, "d")
    )
    assert parse("t = TRUE OR t = False") == Or((cmp("t", "=", True), cmp("t", "=", False)))


def test_queries_may_span_lines() -> None:
    assert parse("a = 1\n  AND b = 2\r\n  AND c = 3\n") == And((A, B, C))


# -- values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("'shoes'", "shoes"),
        ('"shoes"', "shoes"),
        (r"'it\'s'", "it's"),
        ("'it''s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        ('"say ""hi"""', 'say "hi"'),
        ('"it\'s"', "it's"),
        (r"'a\\b'", "a\\b"),
        (r"'a\d'", "a\\d"),
        ("''", ""),
        ("'AND'", "AND"),
        ("3", 3),
        ("-3", -3),
        ("2.5", 2.5),
        ("-2.5", -2.5),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("true", True),
        ("false", False),
        ("null", None),
    ],
)
def test_literal_values(typed: str, value: str | int | float | bool | None) -> None:
    result = parse(f"x = {typed}")
    assert result == cmp("x", "=", value)
    assert isinstance(result, Comparison) and isinstance(result.value, Literal)
    assert type(result.value.value) is type(value)


@pytest.mark.parametrize(
    ("typed", "absolute"),
    [
        ("2024-05-01", date(2024, 5, 1)),
        ("2024-05-01T10:30:00", datetime(2024, 5, 1, 10, 30)),
        ("2024-05-01T10:30", datetime(2024, 5, 1, 10, 30)),
        ("2024-05-01T10:30:00Z", datetime(2024, 5, 1, 10, 30)),
        ("2024-05-01T10:30:00+00:00", datetime(2024, 5, 1, 10, 30)),
        ("2024-05-01T10:30:00+02:00", datetime(2024, 5, 1, 8, 30)),
        ("2024-05-01T01:00-05:00", datetime(2024, 5, 1, 6, 0)),
        ("2024-05-01T23:30:00-01:00", datetime(2024, 5, 2, 0, 30)),
    ],
)
def test_absolute_dates_and_timestamps_in_naive_utc(typed: str, absolute: date) -> None:
    result = parse(f"x >= {typed}")
    assert result == cmp("x", ">=", DateValue(typed, absolute=absolute))
    assert isinstance(result, Comparison) and isinstance(result.value, DateValue)
    assert type(result.value.absolute) is type(absolute)
    assert not isinstance(result.value.absolute, datetime) or result.value.absolute.tzinfo is None


@pytest.mark.parametrize(
    ("typed", "offset", "unit", "is_now"),
    [
        ("today", 0, "d", False),
        ("Today", 0, "d", False),
        ("yesterday", -1, "d", False),
        ("tomorrow", 1, "d", False),
        ("now", 0, "d", True),
        ("-30d", -30, "d", False),
        ("+7d", 7, "d", False),
        ("-8w", -8, "w", False),
        ("-6m", -6, "m", False),
        ("-1y", -1, "y", False),
        ("+2Y", 2, "y", False),
        ("30_days_ago", -30, "d", False),
        ("1_day_ago", -1, "d", False),
        ("1_days_ago", -1, "d", False),
        ("2_weeks_ago", -2, "w", False),
        ("1_week_ago", -1, "w", False),
        ("6_months_ago", -6, "m", False),
        ("1_year_ago", -1, "y", False),
        ("3_Years_Ago", -3, "y", False),
    ],
)
def test_relative_dates(typed: str, offset: int, unit: str, is_now: bool) -> None:
    result = parse(f"last_seen < {typed}")
    assert result == cmp("last_seen", "<", DateValue(typed, offset=offset, unit=unit, is_now=is_now))
    assert isinstance(result, Comparison) and isinstance(result.value, DateValue) and result.value.relative


def test_a_signed_number_followed_by_a_unit_is_a_date_not_a_number() -> None:
    assert parse("x > -30d") == cmp("x", ">", DateValue("-30d", offset=-30))
    assert parse("x > -30") == cmp("x", ">", -30)


# -- behavioral conditions --------------------------------------------------------------


def test_performed_with_the_event_only() -> None:
    assert parse("performed('Product Viewed')") == Performed("Product Viewed")
    assert parse('performed("Product Viewed")') == Performed("Product Viewed")


def test_performed_options_in_any_order() -> None:
    where = And((cmp("category", "=", "shoes"), InList(Attribute("brand"), (Literal("a"), Literal("b")))))
    expected = Performed("Product Viewed", count=CountFilter(">=", 3), within=Duration(7, "d"), where=where)
    assert (
        parse(
            "performed('Product Viewed', count >= 3, within 7d, where category = 'shoes' AND brand IN ('a','b'))"
        )
        == expected
    )
    assert (
        parse(
            "performed('Product Viewed', where category = 'shoes' AND brand IN ('a','b'), within 7d, count >= 3)"
        )
        == expected
    )
    assert (
        parse(
            "performed('Product Viewed', within 7d, where category = 'shoes' and brand in ('a', 'b'), count >= 3)"
        )
        == expected
    )


@pytest.mark.parametrize(("op", "stored"), [("=", "="), ("!=", "!="), ("<>", "!="), (">", ">"), ("<=", "<=")])
def test_count_operators(op: str, stored: str) -> None:
    assert parse(f"performed('X', count {op} 0)") == Performed("X", count=CountFilter(stored, 0))


def test_where_takes_any_clause_form_and_parentheses() -> None:
    where = Or(
        (Not(cmp("a", "=", 1)), And((IsNull(Attribute("b"), negated=True), cmp("c", "MATCHES", "^x"))))
    )
    assert parse("performed('X', where NOT a = 1 OR (b IS NOT NULL AND c MATCHES '^x'))") == Performed(
        "X", where=where
    )


def test_durations_of_each_unit() -> None:
    for typed, amount, unit in [
        ("7d", 7, "d"),
        ("8w", 8, "w"),
        ("6m", 6, "m"),
        ("1y", 1, "y"),
        ("90D", 90, "d"),
    ]:
        assert parse(f"performed('X', within {typed})") == Performed("X", within=Duration(amount, unit))


def test_not_performed_is_not_of_performed() -> None:
    assert parse("not performed('Order Completed', within 90d)") == Not(
        Performed("Order Completed", within=Duration(90, "d"))
    )


def test_first_performed() -> None:
    assert parse("first performed('Order Completed', within 30d)") == Performed(
        "Order Completed", within=Duration(30, "d"), first=True
    )


def test_stopped_performing() -> None:
    assert parse("stopped performing('Order Completed', for 90d)") == Stopped(
        "Order Completed", Duration(90, "d")
    )
    expected = Stopped("Order Completed", Duration(90, "d"), where=cmp("total", ">", 50))
    assert parse("stopped performing('Order Completed', for 90d, where total > 50)") == expected
    assert parse("Stopped Performing('Order Completed', where total > 50, FOR 90d)") == expected


def test_restarted_performing() -> None:
    expected = Restarted("Order Completed", after=Duration(90, "d"), within=Duration(30, "d"))
    assert parse("restarted performing('Order Completed', after 90d, within 30d)") == expected
    assert parse("restarted performing('Order Completed', within 30d, after 90d)") == expected
    assert parse("restarted performing('Order Completed', where a = 1, within 30d, after 90d)") == Restarted(
        "Order Completed", after=Duration(90, "d"), within=Duration(30, "d"), where=A
    )


def test_funnel_of_two_steps() -> None:
    assert parse("performed('Product Added') then performed('Order Completed')") == Funnel(
        (Performed("Product Added"), Performed("Order Completed"))
    )


def test_funnel_trailing_within_belongs_to_the_funnel() -> None:
    assert parse("performed('Product Added') then performed('Order Completed') within 1d") == Funnel(
        (Performed("Product Added"), Performed("Order Completed")), within=Duration(1, "d")
    )


def test_funnel_of_three_steps_with_step_options() -> None:
    query = (
        "performed('A', where a = 1) THEN performed('B', within 2d) "
        "then performed('C', where b = 2, within 3d) within 7d"
    )
    assert parse(query) == Funnel(
        (
            Performed("A", where=A),
            Performed("B", within=Duration(2, "d")),
            Performed("C", within=Duration(3, "d"), where=B),
        ),
        within=Duration(7, "d"),
    )


def test_funnel_is_a_condition_like_any_other() -> None:
    funnel = Funnel((Performed("A"), Performed("B")), within=Duration(1, "d"))
    assert parse("a = 1 AND performed('A') then performed('B') within 1d OR b = 2") == Or(
        (And((A, funnel)), B)
    )
    assert parse("NOT performed('A') then performed('B') within 1d") == Not(funnel)
    assert parse("(performed('A') then performed('B') within 1d) AND a = 1") == And((funnel, A))


def test_in_segment() -> None:
    assert parse("in_segment('vip')") == InSegment("vip")
    assert parse("IN_SEGMENT('vip') AND NOT in_segment(\"churned\")") == And(
        (InSegment("vip"), Not(InSegment("churned")))
    )


def test_the_docstring_examples_of_the_ast_module() -> None:
    examples: list[tuple[str, Condition]] = [
        (
            "country = 'US' AND (age >= 30 OR tags CONTAINS 'vip')",
            And((cmp("country", "=", "US"), Or((cmp("age", ">=", 30), cmp("tags", "CONTAINS", "vip"))))),
        ),
        (
            "last_order_at < -90d AND NOT rfm_group IN ('Lost', 'Hibernating')",
            And(
                (
                    cmp("last_order_at", "<", DateValue("-90d", offset=-90)),
                    Not(InList(Attribute("rfm_group"), (Literal("Lost"), Literal("Hibernating")))),
                )
            ),
        ),
    ]
    for query, expected in examples:
        assert parse(query) == expected


# -- positions --------------------------------------------------------------------------


def test_positions_are_the_first_token_of_each_node() -> None:
    result = parse("country = 'US' AND\n  NOT age >= 30")
    assert isinstance(result, And)
    first, second = result.items
    assert result.position == Position(1, 1)
    assert isinstance(first, Comparison)
    assert first.position == Position(1, 1)
    assert first.value.position == Position(1, 11)
    assert isinstance(second, Not)
    assert second.position == Position(2, 3)
    assert isinstance(second.item, Comparison)
    assert second.item.attribute.position == Position(2, 7)
    assert second.item.value.position == Position(2, 14)


def test_positions_of_behavioral_nodes() -> None:
    result = parse("a = 1 OR first performed('X', within 7d, where b = 2)")
    assert isinstance(result, Or)
    performed = result.items[1]
    assert isinstance(performed, Performed)
    assert performed.position == Position(1, 10)
    assert performed.within is not None and performed.within.position == Position(1, 38)
    assert performed.where is not None and performed.where.position == Position(1, 48)


# -- errors -----------------------------------------------------------------------------


def test_query_ending_after_an_operator() -> None:
    e = error_of("age >")
    assert str(e).startswith("column 6: ")
    assert "the query ends after '>'" in str(e)
    assert "expected a value (a number, 'text', a date such as 2024-05-01 or -30d)" in str(e)
    assert (e.line, e.column) == (1, 6)


def test_unexpected_operator_where_a_value_belongs() -> None:
    e = error_of("age > > 3")
    assert str(e).startswith("column 7: unexpected '>'; expected a value")
    assert e.token == ">"


def test_query_ending_after_and() -> None:
    e = error_of("country = 'US' AND")
    assert "column 19" in str(e)
    assert "ends after 'AND'; expected a condition" in str(e)


def test_missing_closing_parenthesis() -> None:
    e = error_of("(age > 3")
    assert "column 9" in str(e)
    assert "missing ')'" in str(e) and "'(' at column 1" in str(e)
    assert "expected AND, OR or ')'" in str(e)


def test_extra_closing_parenthesis() -> None:
    e = error_of("age > 3)")
    assert "column 8: unexpected ')'" in str(e)
    assert "no '(' for it to close" in str(e)


def test_missing_operator_after_an_attribute() -> None:
    e = error_of("age 3")
    assert str(e) == (
        "column 5: unexpected '3' after the attribute 'age'; "
        "expected an operator (=, !=, >, >=, <, <=, IN, BETWEEN, CONTAINS, MATCHES, IS NULL)"
    )
    assert e.token == "3"


def test_unterminated_string_points_at_where_it_starts() -> None:
    e = error_of("name = 'Bob AND age > 3")
    assert "column 8" in str(e)
    assert "never closed" in str(e)
    e = error_of('name = "Bob')
    assert "column 8" in str(e) and 'closing "' in str(e)


def test_event_name_must_be_quoted() -> None:
    e = error_of("performed(Product Viewed)")
    assert "column 11" in str(e)
    assert "the event name must be a quoted string" in str(e)
    assert "performed('Product Viewed')" in str(e)
    e = error_of("stopped performing(Order, for 9d)")
    assert "event name must be a quoted string" in str(e) and "stopped performing('Order')" in str(e)
    e = error_of("in_segment(vip)")
    assert "segment name must be a quoted string" in str(e) and "in_segment('vip')" in str(e)


def test_unknown_option() -> None:
    e = error_of("performed('X', within 7d, sometimes 3)")
    assert "column 27" in str(e)
    assert "unknown option 'sometimes'; expected count, within or where" in str(e)
    assert "expected for or where" in str(error_of("stopped performing('X', sometimes 3)"))
    assert "expected after, within or where" in str(error_of("restarted performing('X', sometimes 3)"))
    e = error_of("performed('X', for 90d)")
    assert "option 'for'; expected count, within or where" in str(e)


def test_query_ending_inside_options() -> None:
    e = error_of("performed('X',")
    assert "column 15" in str(e) and "expected count, within or where" in str(e)
    e = error_of("performed('X'")
    assert "missing ')'" in str(e) and "expected ',' or ')'" in str(e)


def test_errors_on_later_lines_report_the_line() -> None:
    e = error_of("country = 'US'\n  AND age >")
    assert str(e).startswith("line 2, column 12: the query ends after '>'")
    assert (e.line, e.column) == (2, 12)
    e = error_of("a = 1 AND\n(b = 2 OR\n c 3)")
    assert str(e).startswith("line 3, column 4: unexpected '3' after the attribute 'c'")
    e = error_of("a = 1 AND\n  (b = 2")
    assert "missing ')' to close the '(' at line 2, column 3" in str(e)


def test_repeated_option_is_named() -> None:
    e = error_of("performed('X', count >= 3, within 7d, count >= 4)")
    assert "column 39" in str(e) and "'count' is given twice" in str(e)
    assert "'within' is given twice" in str(error_of("performed('X', within 7d, within 8d)"))
    assert "'where' is given twice" in str(
        error_of("stopped performing('X', for 9d, where a = 1, where b = 2)")
    )
    assert "'after' is given twice" in str(
        error_of("restarted performing('X', after 9d, within 1d, after 2d)")
    )


def test_count_with_first_is_an_error() -> None:
    e = error_of("first performed('X', within 30d, count >= 2)")
    assert "column 34" in str(e) and "not count" in str(e)


def test_count_takes_a_whole_non_negative_number() -> None:
    assert "whole number" in str(error_of("performed('X', count >= 2.5)"))
    assert "whole number" in str(error_of("performed('X', count >= -1)"))
    e = error_of("performed('X', count >= 'three')")
    assert "column 25" in str(e) and "expected a whole number" in str(e)


def test_behavioral_conditions_are_not_allowed_inside_where() -> None:
    e = error_of("performed('X', where a = 1 AND performed('Y'))")
    assert "column 32" in str(e)
    assert "where takes conditions on the event's fields" in str(e)
    assert e.token == "performed"
    assert "event's fields" in str(error_of("performed('X', where NOT in_segment('vip'))"))
    assert "event's fields" in str(
        error_of("stopped performing('X', for 1d, where (a = 1 OR first performed('Y')))")
    )


def test_funnel_steps_take_within_and_where_only() -> None:
    e = error_of("performed('A', count > 2) then performed('B')")
    assert "column 16" in str(e) and "funnel steps take within and where only" in str(e)
    e = error_of("performed('A') then first performed('B')")
    assert "column 21" in str(e) and "funnel steps take within and where only" in str(e)


def test_stopped_and_restarted_need_their_durations() -> None:
    assert "stopped performing needs `for DURATION`" in str(error_of("stopped performing('X')"))
    assert "needs `for DURATION`" in str(error_of("stopped performing('X', where a = 1)"))
    assert "needs `within DURATION`" in str(error_of("restarted performing('X', after 90d)"))
    assert "needs `after DURATION` and `within DURATION`" in str(error_of("restarted performing('X')"))


def test_bad_regular_expression() -> None:
    e = error_of("email MATCHES '(['")
    assert "column 15" in str(e) and "not a valid regular expression" in str(e)
    assert "expected a pattern in quotes" in str(error_of("email MATCHES 3"))


def test_invalid_calendar_date() -> None:
    e = error_of("signed_up_at > 2024-02-30")
    assert "column 16" in str(e) and "'2024-02-30' is not a real date" in str(e)
    assert "column 5" in str(error_of("x = 2024-05-01T25:00"))
    assert "YYYY-MM-DD" in str(error_of("x = 2024-5-1"))


def test_unsigned_relative_date() -> None:
    e = error_of("last_seen > 30d")
    assert "column 13" in str(e)
    assert "write -30d for 30 days ago or +30d for 30 days ahead" in str(e)
    assert "write -1w for 1 week ago" in str(error_of("x IN (1w)"))


def test_bad_durations() -> None:
    rule = "a duration is a positive number of hours (h), days (d), weeks (w), months (m) or years (y), like 7d"
    e = error_of("performed('X', within 0d)")
    assert "column 23" in str(e) and rule in str(e)
    e = error_of("performed('X', within -7d)")
    assert "column 23" in str(e) and rule in str(e)
    assert "expected a duration" in str(error_of("performed('X', within 7)"))


def test_empty_query() -> None:
    for query in ("", "   ", "\n\t"):
        assert str(error_of(query)) == "the query is empty"


def test_empty_in_list() -> None:
    e = error_of("country IN ()")
    assert "column 13" in str(e) and "IN needs at least one value" in str(e)


def test_hints_for_common_slips() -> None:
    assert "text goes in quotes: 'US'" in str(error_of("country = US"))
    assert "backquotes" in str(error_of("count > 3"))
    assert "single =" in str(error_of("age == 3"))
    assert "write AND or OR" in str(error_of("a = 1 && b = 2"))
    assert "inside the parentheses" in str(error_of("performed('A') within 7d"))
    assert "one letter" in str(error_of("x > -7days"))


BAD_QUERIES = [
    "age >",
    "age > > 3",
    "(age > 3",
    "age 3",
    "a = 1 OR OR b = 1",
    "x IS",
    "x NOT",
    "x BETWEEN 1 OR 2",
    "first x",
    "performed",
    "stopped performed('X', for 9d)",
    "x = 'a' 'b'",
    "x = +7",
    "ð = 1",
    "`count = 1",
    "x = 1e999",
    "anniversary(x) 3",
    "anniversary(",
    "performed('')",
    "in_segment('')",
    "performed('X', where)",
    "performed('A') then",
    "performed('A') then performed('B') within",
    "NOT",
    ")",
    ",",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_errors_never_show_grammar_names(query: str) -> None:
    message = str(error_of(query))
    assert message.startswith("column ")
    for leak in ("__", "_RPAR", "_LPAR", "RPAR", "$END", "NAME", "STRING", "DURATION", "Token("):
        assert leak not in message


VALID_QUERIES = [
    "country = 'US' AND (age >= 30 OR tags CONTAINS 'vip') AND NOT x IN (1, 2)",
    "performed('Product Viewed', count >= 3, within 7d, where category = 'shoes' AND brand IN ('a','b'))",
    "performed('A', where a = 1) then performed('B') then performed('C') within 1d",
    "restarted performing('X', after 90d, within 30d, where a BETWEEN -30d AND 2024-05-01T10:00Z)",
    "anniversary(birthday) IS NOT NULL OR in_segment('vip')",
]


@pytest.mark.parametrize("query", VALID_QUERIES)
def test_every_prefix_of_a_valid_query_parses_or_fails_cleanly(query: str) -> None:
    # The strongest check that no Lark exception, IndexError or terminal name escapes:
    # whatever a marketer has typed so far gets a SegmentQueryError in words.
    for end in range(1, len(query) + 1):
        try:
            parse(query[:end])
        except SegmentQueryError as e:
            assert "__" not in str(e) and "$END" not in str(e) and "RPAR" not in str(e)
    assert parse(query) is not None


def test_every_terminal_has_words() -> None:
    terminals = {t.name for t in _parser().terminals if not t.name.startswith("__IGNORE")}
    assert terminals <= set(_WORDS)


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    assert "nests too deeply" in str(error_of("NOT " * 5000 + "a = 1"))


def test_non_text_is_an_error() -> None:
    with pytest.raises(SegmentQueryError):
        parse(None)  # type: ignore[arg-type]


def test_hours_are_durations_but_not_dates() -> None:
    parsed = parse("performed('A') then performed('B') within 12h")
    assert isinstance(parsed, Funnel) and parsed.within == Duration(12, "h")
    e = error_of("last_seen > -12h")
    assert "column 16: unexpected 'h'" in str(e) and "relative dates take one letter" in str(e)
