"""Dates and durations of the segment language, resolved against the evaluation's clock.

Relative dates are days: ``today`` is the evaluation's UTC day, ``-30d`` the day 30 days
before it, ``-6m`` the same day of the month six calendar months before (the last day of
that month when it is shorter: -1m from 31 March is 28 or 29 February). ``now`` is the
evaluation's instant. Durations (``within 7d``, also in hours: ``within 12h``) count back
from that instant: ``within 7d`` is the last 7 × 24 hours, ``within 1m`` since the same
time one calendar month ago.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta

from patron.segments.ast import DateValue, Duration


def shift(day: date, amount: int, unit: str) -> date:
    """``day`` moved by ``amount`` days, weeks, calendar months or years."""
    if unit == "d":
        return day + timedelta(days=amount)
    if unit == "w":
        return day + timedelta(weeks=amount)
    months = amount * (12 if unit == "y" else 1)
    if unit not in ("m", "y"):
        raise ValueError(f"unknown unit {unit!r}")
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return day.replace(year=year, month=month + 1, day=min(day.day, last))


def resolve(value: DateValue, as_of: datetime) -> date | datetime:
    """The date (or, for ``now`` and timestamps, the instant) a date value stands for."""
    if value.is_now:
        return as_of
    if value.absolute is not None:
        return value.absolute
    return shift(as_of.date(), value.offset, value.unit)


def window_start(duration: Duration, as_of: datetime) -> datetime:
    """The instant ``duration`` before ``as_of`` (``within`` and ``for`` windows)."""
    if duration.unit == "h":
        return as_of - timedelta(hours=duration.amount)
    if duration.unit in ("d", "w"):
        return as_of - timedelta(days=duration.amount * (7 if duration.unit == "w" else 1))
    day = shift(as_of.date(), -duration.amount, duration.unit)
    return datetime.combine(day, as_of.time())


def microseconds(duration: Duration) -> int:
    """A duration in microseconds, for gaps between two events (a month 30 days, a year
    365: there is no calendar between two instants). Microseconds, not seconds: engines
    round a difference in seconds of times with fractions differently."""
    hours = {"h": 1, "d": 24, "w": 24 * 7, "m": 24 * 30, "y": 24 * 365}[duration.unit]
    return duration.amount * hours * 3_600_000_000


def anniversary_keys(low: date, high: date) -> list[int] | None:
    """Month and day keys (``month * 100 + day``) of every day from ``low`` to ``high``;
    ``None`` when the range is a year or longer (every day matches). A 29 February
    anniversary counts on 28 February in years without one."""
    if high < low:
        return []
    if (high - low).days >= 365:
        return None
    keys: set[int] = set()
    day = low
    while day <= high:
        keys.add(day.month * 100 + day.day)
        if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
            keys.add(229)
        day += timedelta(days=1)
    return sorted(keys)


def parse_instant(text: str) -> datetime | date:
    """A date (``2024-01-31``) or an ISO time (``2024-01-31T12:00:00Z``, an offset, or none
    for UTC) as typed in ``--at``/``--as-of`` or an API field, as naive UTC like every
    stored time. Raises ``ValueError`` with a message naming the forms."""
    value = text.strip()
    try:
        if "T" not in value and " " not in value:
            return date.fromisoformat(value)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2024-01-31) or an ISO time (2024-01-31T12:00:00Z)") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo is not None else parsed
