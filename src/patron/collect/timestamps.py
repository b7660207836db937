"""Timestamps of the tracking spec, and the clock-skew correction.

Segment's rule: a message's ``timestamp`` (``originalTimestamp`` once stored) was read
from the client's clock, and ``sentAt`` from the same clock when the batch left the
client. Their difference is how long the message waited on the device, which holds even
when the clock itself is wrong, so the corrected time is
``receivedAt - (sentAt - originalTimestamp)``. Without ``sentAt`` the client's timestamp
is used as given (historical imports); without any timestamp, ``receivedAt``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from patron.collect.jsonkinds import json_kind


def parse_timestamp(value: object) -> datetime:
    """Parse an ISO-8601 string into a naive UTC datetime.

    Raises:
        ValueError: with a reason fit for an error message.
    """
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO-8601 date-time string, got {json_kind(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{value[:40]!r} is not an ISO-8601 date-time such as 2024-05-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def corrected_timestamp(
    original: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """The event time corrected for a skewed client clock (see module docstring)."""
    if original is None:
        return received_at
    if sent_at is None:
        return original
    return received_at - (sent_at - original)


def utc_now() -> datetime:
    """Now, as a naive UTC datetime (the store's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)
