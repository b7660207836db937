"""The Segment-spec rules of MessageValidator, one rule at a time."""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest

from patron.collect.spec import (
    MessageValidator,
    Rejection,
    content_message_id,
    rows_to_table,
)
from patron.store.tables import EVENT_COLUMNS

RECEIVED = datetime(2024, 5, 1, 12, 0, 0)


@pytest.fixture
def validator() -> MessageValidator:
    return MessageValidator(max_message_bytes=32 * 1024, max_future=timedelta(hours=24))


def check(validator: MessageValidator, message: object, **kw: object) -> dict | Rejection:
    outcome = validator.check(message, source_id="web", received_at=RECEIVED, **kw)  # type: ignore[arg-type]
    if isinstance(outcome, Rejection):
        return outcome
    return dict(zip(EVENT_COLUMNS, outcome, strict=True))


@pytest.mark.parametrize(
    ("message", "field", "fragment"),
    [
        ({"type": "track", "userId": "u"}, "event", "required"),
        ({"type": "track", "userId": "u", "event": ""}, "event", "non-empty"),
        ({"type": "track", "userId": "u", "event": 3}, "event", "got a number"),
        ({"type": "track", "event": "E"}, "userId", "userId or anonymousId"),
        ({"type": "identify", "userId": "", "anonymousId": "  "}, "userId", "userId or anonymousId"),
        ({"type": "identify", "userId": {"a": 1}}, "userId", "got an object"),
        ({"type": "identify", "userId": True}, "userId", "got a boolean"),
        ({"type": "group", "userId": "u"}, "groupId", "required"),
        ({"type": "alias", "userId": "u"}, "previousId", "required"),
        ({"type": "alias", "previousId": "p"}, "userId", "required"),
        ({"type": "page", "anonymousId": "a", "name": 7}, "name", "string"),
        ({"type": "identify", "userId": "u", "traits": []}, "traits", "must be an object"),
        ({"type": "track", "userId": "u", "event": "E", "properties": "x"}, "properties", "object"),
        ({"type": "track", "userId": "u", "event": "E", "context": 1}, "context", "object"),
        ({"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"}, "timestamp", "ISO-8601"),
        ({"type": "track", "userId": "u", "event": "E", "timestamp": 1714564800}, "timestamp", "got a number"),
        ({"type": "track", "userId": "u", "event": "E", "sentAt": "2024-13-01"}, "sentAt", "ISO-8601"),
        ({"type": "track", "userId": "u", "event": "E", "messageId": ["x"]}, "messageId", "string"),
        ({"type": "bogus", "userId": "u"}, "type", "not one of"),
        ({"userId": "u"}, "type", "required"),
    ],
)
def test_spec_violations_name_the_field(
    validator: MessageValidator, message: dict, field: str, fragment: str
) -> None:
    outcome = check(validator, message, index=4)
    assert isinstance(outcome, Rejection)
    assert outcome.field == field
    assert fragment in outcome.reason
    assert outcome.index == 4
    raw = orjson.loads(outcome.raw)  # kept as received, for the failed-events table
    assert {key: raw.get(key) for key in message} == message


def test_non_object_message_is_rejected(validator: MessageValidator) -> None:
    outcome = check(validator, [1, 2], index=0)
    assert isinstance(outcome, Rejection)
    assert "JSON object" in outcome.reason and "array" in outcome.reason
    assert outcome.as_json()["field"] is None


@pytest.mark.parametrize(
    "message",
    [
        {"type": "identify", "userId": "u1", "traits": {"email": "a@b.c"}},
        {"type": "identify", "anonymousId": "anon"},
        {"type": "track", "userId": 42, "event": "Order Completed", "properties": {"revenue": 9}},
        {"type": "page", "anonymousId": "a", "name": "Home"},
        {"type": "screen", "userId": "u", "name": "Cart"},
        {"type": "group", "userId": "u", "groupId": 17},
        {"type": "alias", "userId": "u", "previousId": "anon"},
    ],
)
def test_valid_messages_become_rows(validator: MessageValidator, message: dict) -> None:
    row = check(validator, dict(message))
    assert isinstance(row, dict), row
    assert row["type"] == message["type"]
    assert row["source_id"] == "web"
    assert row["received_at"] == RECEIVED
    assert row["message_id"]  # made by the server when absent
    raw = orjson.loads(row["raw"])
    assert raw["messageId"] == row["message_id"]
    if "userId" in message:
        assert row["user_id"] == str(message["userId"])


def test_type_hint_overrides_and_columns_are_filled(validator: MessageValidator) -> None:
    row = check(
        validator,
        {"userId": "u", "event": "Clicked", "type": "identify", "messageId": 12},
        type_hint="track",
    )
    assert isinstance(row, dict)
    assert (row["type"], row["event"], row["message_id"]) == ("track", "Clicked", "12")
    assert orjson.loads(row["raw"])["type"] == "track"


def test_clock_skew_is_corrected_with_sent_at(validator: MessageValidator) -> None:
    # The client clock is 3 days fast; the event waited 10 s on the device before sending.
    row = check(
        validator,
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "timestamp": "2024-05-04T11:59:50Z",
            "sentAt": "2024-05-04T12:00:00Z",
        },
    )
    assert isinstance(row, dict)
    assert row["timestamp"] == RECEIVED - timedelta(seconds=10)
    assert row["original_timestamp"] == datetime(2024, 5, 4, 11, 59, 50)
    assert row["sent_at"] == datetime(2024, 5, 4, 12, 0, 0)


def test_timestamp_without_sent_at_is_kept_and_offsets_become_utc(validator: MessageValidator) -> None:
    row = check(validator, {"type": "track", "userId": "u", "event": "E", "timestamp": "1997-01-01T10:00:00+02:00"})
    assert isinstance(row, dict)
    assert row["timestamp"] == datetime(1997, 1, 1, 8, 0, 0)


def test_missing_timestamp_uses_received_at(validator: MessageValidator) -> None:
    row = check(validator, {"type": "track", "userId": "u", "event": "E"})
    assert isinstance(row, dict)
    assert row["timestamp"] == RECEIVED and row["original_timestamp"] is None


def test_far_future_timestamp_is_rejected(validator: MessageValidator) -> None:
    outcome = check(validator, {"type": "track", "userId": "u", "event": "E", "timestamp": "2031-01-01T00:00:00Z"})
    assert isinstance(outcome, Rejection)
    assert outcome.field == "timestamp" and "after the message was received" in outcome.reason


def test_slightly_future_timestamp_is_accepted(validator: MessageValidator) -> None:
    row = check(validator, {"type": "track", "userId": "u", "event": "E", "timestamp": "2024-05-01T18:00:00Z"})
    assert isinstance(row, dict)


def test_oversize_message_is_rejected() -> None:
    small = MessageValidator(max_message_bytes=1000, max_future=timedelta(hours=1))
    outcome = small.check(
        {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * 2000}},
        source_id="s",
        received_at=RECEIVED,
    )
    assert isinstance(outcome, Rejection)
    assert "over the limit of 1000 bytes" in outcome.reason


def test_batch_context_and_sent_at_apply_under_the_message(validator: MessageValidator) -> None:
    row = check(
        validator,
        {"type": "track", "userId": "u", "event": "E", "context": {"ip": "1.2.3.4"}, "timestamp": "2024-05-01T11:00:00Z"},
        batch_context={"ip": "9.9.9.9", "library": {"name": "x"}},
        batch_sent_at="2024-05-01T11:00:30Z",
    )
    assert isinstance(row, dict)
    raw = orjson.loads(row["raw"])
    assert raw["context"] == {"ip": "1.2.3.4", "library": {"name": "x"}}
    assert row["timestamp"] == RECEIVED - timedelta(seconds=30)


def test_content_message_id_is_stable_and_order_independent() -> None:
    a = content_message_id({"x": 1, "y": [1, 2]})
    assert a == content_message_id({"y": [1, 2], "x": 1})
    assert a != content_message_id({"x": 2, "y": [1, 2]})


def test_rows_to_table_round_trips(validator: MessageValidator) -> None:
    rows = [
        validator.check({"type": "track", "userId": f"u{i}", "event": "E"}, source_id="s", received_at=RECEIVED)
        for i in range(3)
    ]
    table = rows_to_table(rows)  # type: ignore[arg-type]
    assert table.column_names == list(EVENT_COLUMNS)
    assert table.column("user_id").to_pylist() == ["u0", "u1", "u2"]
    assert rows_to_table([]).num_rows == 0
