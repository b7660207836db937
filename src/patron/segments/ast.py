"""The segment language's syntax tree: what the parser (language.py) produces and the
compiler (compiler.py) turns into Ibis.

Every node records where it started in the query text (:class:`Position`) so that an
error found after parsing (an unknown attribute, a value of the wrong type) can still
point at the column the user typed it in.

The language, in short (docs/segments.md is the reference)::

    country = 'US' AND (age >= 30 OR tags CONTAINS 'vip')
    last_order_at < -90d AND NOT rfm_group IN ('Lost', 'Hibernating')
    birthday BETWEEN today AND +7d
    performed('Product Viewed', count >= 3, within 7d, where category = 'shoes')
    not performed('Order Completed', within 90d)
    first performed('Order Completed', within 30d)
    stopped performing('Order Completed', for 90d)
    restarted performing('Order Completed', after 90d, within 30d)
    performed('Product Added') then performed('Order Completed') within 1d
    in_segment('vip')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class Position:
    """Where a node starts in the query: 1-based line and column."""

    line: int = 1
    column: int = 1


# -- values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A string (``'shoes'``, ``"shoes"``), number (``3``, ``-2.5``), boolean
    (``true``/``false``) or ``null`` as typed."""

    value: str | int | float | bool | None
    position: Position = field(default=Position(), compare=False)

    @property
    def kind(self) -> str:
        """``string``, ``number``, ``boolean`` or ``null``."""
        if self.value is None:
            return "null"
        if isinstance(self.value, bool):
            return "boolean"
        if isinstance(self.value, int | float):
            return "number"
        return "string"


DATE_UNITS = ("d", "w", "m", "y")
"""Units of relative dates and durations: days, weeks, months, years."""


@dataclass(frozen=True)
class DateValue:
    """A date or time as typed: absolute (``2024-05-01``, ``2024-05-01T10:30:00``) or
    relative to the evaluation's day (``today``, ``yesterday``, ``tomorrow``, ``-30d``,
    ``+7d``, ``-8w``, ``-6m``, ``-1y``, ``30_days_ago``, ``2_weeks_ago``, ``6_months_ago``).
    Relative forms are ``offset`` units from today (``30_days_ago`` is -30 d); ``now``
    is the evaluation's instant (``is_now``)."""

    text: str
    absolute: date | datetime | None = None
    offset: int = 0
    unit: str = "d"
    is_now: bool = False
    position: Position = field(default=Position(), compare=False)

    @property
    def relative(self) -> bool:
        return self.absolute is None


@dataclass(frozen=True)
class Duration:
    """A length of time in ``within 7d``, ``for 90d``, ``after 8w``, ``within 12h``:
    always positive; units h, d, w, m, y."""

    amount: int
    unit: str
    position: Position = field(default=Position(), compare=False)


Value = Literal | DateValue


# -- attributes -----------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    """A name in a clause: a trait, a computed trait, an RFM score, or inside ``where`` an
    event field. Dotted names reach inside objects (``address.city``,
    ``properties.color``)."""

    name: str
    position: Position = field(default=Position(), compare=False)
    anniversary: bool = False
    """Written ``anniversary(name)``: compare by month and day only, whatever the year."""


# -- conditions -----------------------------------------------------------------------

COMPARISON_OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "CONTAINS", "NOT CONTAINS", "MATCHES", "NOT MATCHES")


@dataclass(frozen=True)
class Comparison:
    """``attribute OP value``; ``op`` is one of :data:`COMPARISON_OPERATORS` (upper case;
    ``<>`` is read as ``!=``)."""

    attribute: Attribute
    op: str
    value: Value
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class Between:
    """``attribute [NOT] BETWEEN low AND high`` (both ends included)."""

    attribute: Attribute
    low: Value
    high: Value
    negated: bool = False
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class InList:
    """``attribute [NOT] IN (v1, v2, ...)``: at least one value."""

    attribute: Attribute
    values: tuple[Value, ...]
    negated: bool = False
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class IsNull:
    """``attribute IS [NOT] NULL``."""

    attribute: Attribute
    negated: bool = False
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class And:
    items: tuple[Condition, ...]
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class Or:
    items: tuple[Condition, ...]
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class Not:
    item: Condition
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class CountFilter:
    """``count >= 3`` among a behavioral condition's options (``op`` one of = != > >= < <=)."""

    op: str
    value: int
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class Performed:
    """``performed('Event Name', count >= 3, within 7d, where <condition>)``; every
    option optional, in any order, each at most once. ``first`` is ``first
    performed(...)``: the profile's first such event ever falls within the window
    (``count`` is not allowed then). ``where`` is a condition over the event's fields.
    Without ``count``, at least one event."""

    event: str
    count: CountFilter | None = None
    within: Duration | None = None
    where: Condition | None = None
    first: bool = False
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class Stopped:
    """``stopped performing('Event', for 90d [, where ...])``: did it before the last
    ``for`` and not since."""

    event: str
    for_: Duration
    where: Condition | None = None
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class Restarted:
    """``restarted performing('Event', after 90d, within 30d [, where ...])``: did it in
    the last ``within`` after a gap of at least ``after`` with none (and had done it
    before the gap)."""

    event: str
    after: Duration
    within: Duration
    where: Condition | None = None
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class Funnel:
    """``performed(A) then performed(B) [then ...] [within 1d]``: the steps in this order
    (each at or after the one before), the last no later than ``within`` after the first.
    Steps are :class:`Performed` without ``count`` or ``first``."""

    steps: tuple[Performed, ...]
    within: Duration | None = None
    position: Position = field(default=Position(), compare=False)


@dataclass(frozen=True)
class InSegment:
    """``in_segment('vip')``: a member of another segment."""

    name: str
    position: Position = field(default=Position(), compare=False)


Condition = Comparison | Between | InList | IsNull | And | Or | Not | Performed | Stopped | Restarted | Funnel | InSegment
