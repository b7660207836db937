"""From a parsed query (ast.py) to an Ibis expression: the profile ids that match.

Two passes. :func:`requirements` walks the tree, checks every name and value against the
:class:`~patron.segments.attributes.Catalogue` (an unknown attribute, ``age > 'abc'``, a
``CONTAINS`` on a number: each an error at its column) and says what the evaluation
needs: which traits to bring beside the profile row, which event fields and message
properties, which other segments. :meth:`Compiler.matching` then builds the expression
over :class:`Sources`, tables the caller provides, so the same compiled query runs over
every profile (a full refresh) or over the few that changed (an incremental one).

**NULL.** Every clause is true or false, never unknown: a clause about a value the profile
does not have is false, whatever the operator (``country != 'US'`` does not match a
profile without a country, and neither does ``country NOT IN ('US')``), except ``IS
NULL``. ``NOT`` is the exact complement of what it negates, so ``NOT country = 'US'``
matches profiles without a country. This is SQL's rule for clauses, made two-valued so
that ``NOT`` never silently drops anyone.

**Behavioral conditions** become ``profile_id IN (...)`` over the profile's events (never
events after the evaluation's instant). A count that zero satisfies (``count < 3``,
``count = 0``) includes profiles with no such event: the condition is about the number,
which can be zero. Without a count, at least one event.
"""

from __future__ import annotations

import operator
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from patron.segments import ast
from patron.segments.attributes import (
    ANNIVERSARY_NAMES,
    EVENT_FIELDS,
    PROPERTIES,
    AttributeInfo,
    Catalogue,
    event_field,
    event_suggestions,
)
from patron.segments.dates import anniversary_keys, microseconds, resolve, window_start
from patron.segments.exceptions import SegmentQueryError

_ORDERED = (">", ">=", "<", "<=")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
}  # fmt: skip
#: Prefix of a trait's column beside the profile row, and of a property's in the events.
TRAIT_PREFIX = "t__"
PROPERTY_PREFIX = "p__"


def trait_column(root: str) -> str:
    # The checksum keeps two names that differ only in punctuation apart.
    return TRAIT_PREFIX + re.sub(r"[^0-9A-Za-z_]", "_", root) + f"_{zlib.crc32(root.encode()) % 10_000}"


def property_column(path: str) -> str:
    return PROPERTY_PREFIX + re.sub(r"[^0-9A-Za-z_]", "_", path)


@dataclass
class Requirements:
    """What evaluating a query needs, found while checking it."""

    traits: set[str] = field(default_factory=set)
    """Trait names (roots of dotted names) to bring beside the profile row."""
    event_fields: set[str] = field(default_factory=set)
    properties: set[str] = field(default_factory=set)
    """Dotted paths below ``properties`` that ``where`` reads from messages."""
    property_events: set[str] = field(default_factory=set)
    """Event names whose messages those properties are read from."""
    event_windows: dict[str, list[ast.Duration | None]] = field(default_factory=dict)
    """For each event name behavioral conditions name (the only events evaluation
    reads), the window of every condition reading it (``None``: one reads its whole
    history): how far back the events are needed."""
    segments: set[str] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)
    """Columns of the profile row (computed traits, RFM attributes) the query names."""
    rfm: bool = False
    events: bool = False
    time_dependent: bool = False
    """Whether the result can change with the clock alone (relative dates, windows)."""

    def update(self, other: Requirements) -> None:
        self.traits |= other.traits
        self.event_fields |= other.event_fields
        self.properties |= other.properties
        self.property_events |= other.property_events
        for name, windows in other.event_windows.items():
            self.event_windows.setdefault(name, []).extend(windows)
        self.segments |= other.segments
        self.columns |= other.columns
        self.rfm |= other.rfm
        self.events |= other.events
        self.time_dependent |= other.time_dependent


@dataclass(frozen=True)
class Sources:
    """The tables a compiled query reads."""

    profiles: ir.Table
    """One row per profile in scope: ``profile_id`` and the computed and RFM columns."""
    traits: ir.Table
    """``profile_traits`` (profile_id, trait, value as JSON text)."""
    events: ir.Table | None
    """The events in scope with ``profile_id, seq, timestamp, event``, the fields and the
    property columns the queries need (``None`` when none uses events)."""
    members: Callable[[str], ir.Table]
    """The current members (``profile_id``) of a segment by name."""


def _error(message: str, position: ast.Position, token: str | None = None) -> SegmentQueryError:
    return SegmentQueryError(message, column=position.column, line=position.line, token=token)


def _show(value: ast.Value) -> str:
    if isinstance(value, ast.DateValue):
        return value.text
    if isinstance(value.value, str):
        return repr(value.value)
    return "null" if value.value is None else str(value.value).lower() if isinstance(value.value, bool) else str(value.value)


_KIND_WORDS = {
    "number": "a number", "string": "text", "boolean": "true or false", "date": "a date", "timestamp": "a date",
    "list": "a list", "object": "an object", "null": "null", "any": "a value",
}  # fmt: skip


def _value_kind(value: ast.Value) -> str:
    return "date" if isinstance(value, ast.DateValue) else value.kind


class _Checker:
    """The first pass: names and values checked, requirements collected."""

    def __init__(self, catalogue: Catalogue, anniversaries: frozenset[str]) -> None:
        self.catalogue = catalogue
        self.anniversaries = anniversaries
        self.needs = Requirements()

    def condition(self, node: ast.Condition, *, in_event: bool = False) -> None:
        if isinstance(node, ast.And | ast.Or):
            for item in node.items:
                self.condition(item, in_event=in_event)
        elif isinstance(node, ast.Not):
            self.condition(node.item, in_event=in_event)
        elif isinstance(node, ast.Performed | ast.Stopped | ast.Restarted | ast.Funnel):
            if in_event:
                raise _error("where takes conditions on the event's fields, not behavioral conditions", node.position)
            self._behavioral(node)
        elif isinstance(node, ast.InSegment):
            if in_event:
                raise _error("where takes conditions on the event's fields, not in_segment", node.position)
            self.needs.segments.add(node.name)
        else:
            self._clause(node, in_event=in_event)

    def _behavioral(self, node: ast.Performed | ast.Stopped | ast.Restarted | ast.Funnel) -> None:
        self.needs.events = True
        self.needs.time_dependent = True  # "no event since" and windows move with the clock
        steps = node.steps if isinstance(node, ast.Funnel) else (node,)
        # Only a plain performed(..., within) reads no event older than its window;
        # first-time, stopped, restarted and funnels look back over the whole history.
        window = node.within if isinstance(node, ast.Performed) and not node.first else None
        for step in steps:
            if not step.event:
                raise _error("the event name is empty", step.position)
            self.needs.event_windows.setdefault(step.event, []).append(window)
            if step.where is not None:
                self.condition(step.where, in_event=True)
                if any(a.name.startswith(PROPERTIES + ".") for a in _attributes(step.where)):
                    self.needs.property_events.add(step.event)

    def attribute(self, attribute: ast.Attribute) -> AttributeInfo:
        info = self.catalogue.lookup(attribute.name)
        if info is None:
            hint = self.catalogue.suggestions(attribute.name)
            also = f" (did you mean {', '.join(repr(h) for h in hint)}?)" if hint else ""
            raise _error(
                f"unknown attribute {attribute.name!r}{also}; `patron segments attributes` lists them",
                attribute.position, attribute.name,
            )  # fmt: skip
        if info.source == "trait":
            self.needs.traits.add(attribute.name.removeprefix("traits.").split(".", 1)[0])
        else:
            self.needs.columns.add(attribute.name)
            if info.source == "rfm":  # recency is measured to the evaluation's instant
                self.needs.rfm = self.needs.time_dependent = True
        if "." in attribute.name.removeprefix("traits.") and info.kind == "object":
            return AttributeInfo(attribute.name, "any", info.source, info.description)  # kind from the value
        return info

    def _event_attribute(self, attribute: ast.Attribute) -> AttributeInfo:
        found = event_field(attribute.name)
        if found is None:
            hint = event_suggestions(attribute.name)
            also = f" (did you mean {', '.join(repr(h) for h in hint)}?)" if hint else ""
            raise _error(
                f"unknown event field {attribute.name!r}{also}; where can name {', '.join(EVENT_FIELDS)} "
                "or properties.NAME", attribute.position, attribute.name,
            )  # fmt: skip
        if attribute.name.startswith(PROPERTIES + "."):
            self.needs.properties.add(attribute.name.removeprefix(PROPERTIES + "."))
        elif attribute.name != "timestamp":
            self.needs.event_fields.add(attribute.name)
        return AttributeInfo(attribute.name, found[0], "event", found[1])

    def _clause(self, node: ast.Comparison | ast.Between | ast.InList | ast.IsNull, *, in_event: bool) -> None:
        info = self._event_attribute(node.attribute) if in_event else self.attribute(node.attribute)
        if isinstance(node, ast.IsNull):
            return
        values = (
            (node.value,) if isinstance(node, ast.Comparison)
            else (node.low, node.high) if isinstance(node, ast.Between) else node.values
        )  # fmt: skip
        for value in values:
            if isinstance(value, ast.DateValue) and value.relative:
                self.needs.time_dependent = True
            if isinstance(value, ast.Literal) and value.value is None:
                raise _error("compare with null by writing IS NULL or IS NOT NULL", value.position, "null")
        kind = info.kind
        op = node.op if isinstance(node, ast.Comparison) else "BETWEEN" if isinstance(node, ast.Between) else "IN"
        name = node.attribute.name
        if self.is_anniversary(node.attribute, kind, values):
            if op not in ("=", "BETWEEN", "IN"):
                raise _error(f"an anniversary ({name}) takes =, BETWEEN or IN, not {op}", node.position, op)
            for value in values:
                if not isinstance(value, ast.DateValue):
                    raise _error(f"{name} is a date; expected a date such as today or +7d, got {_show(value)}",
                                 value.position, _show(value))  # fmt: skip
            return
        if kind == "list":
            if op not in ("CONTAINS", "NOT CONTAINS", "IN"):
                raise _error(f"{name} is a list; use CONTAINS, NOT CONTAINS, IN or NOT IN, not {op}", node.position, op)
            self._expect(values, "string", name, "a list of text")
            return
        if op in ("CONTAINS", "NOT CONTAINS", "MATCHES", "NOT MATCHES"):
            if kind not in ("string", "any"):
                raise _error(f"{op} needs text or a list; {name} is {_KIND_WORDS[kind]}", node.position, op)
            self._expect(values, "string", name, "text")
            return
        if kind == "boolean" and (op in _ORDERED or op == "BETWEEN"):
            raise _error(f"{name} is true or false; use = or !=, not {op}", node.position, op)
        if kind == "object":
            raise _error(f"{name} is an object; name a field inside it, such as {name}.city", node.attribute.position, name)
        if kind == "any":
            kinds = {_value_kind(v) for v in values}
            if len(kinds) > 1:
                raise _error(f"the values compared with {name} must be of one kind", node.position)
            return
        self._expect(values, "date" if kind in ("date", "timestamp") else kind, name, _KIND_WORDS[kind])

    def is_anniversary(self, attribute: ast.Attribute, kind: str, values: tuple[ast.Value, ...]) -> bool:
        if attribute.anniversary:
            if kind not in ("date", "timestamp", "any"):
                raise _error(f"anniversary() needs a date; {attribute.name} is {_KIND_WORDS[kind]}", attribute.position)
            return True
        leaf = attribute.name.rsplit(".", 1)[-1]
        relative = any(isinstance(v, ast.DateValue) and v.relative for v in values)
        return leaf in self.anniversaries and kind in ("date", "timestamp") and relative

    def _expect(self, values: tuple[ast.Value, ...], kind: str, name: str, words: str) -> None:
        for value in values:
            got = _value_kind(value)
            if got == kind:
                continue
            hint = ""
            if kind == "date" and isinstance(value, ast.Literal) and isinstance(value.value, str):
                hint = " (write dates without quotes: 2024-05-01, -30d, today)"
            elif kind == "string" and got == "number":
                hint = f" (write '{_show(value)}' in quotes to compare as text)"
            raise _error(f"{name} is {words}; {_show(value)} is {_KIND_WORDS[got]}{hint}", value.position, _show(value))


def requirements(
    condition: ast.Condition, catalogue: Catalogue, anniversaries: frozenset[str] = ANNIVERSARY_NAMES
) -> Requirements:
    """Check ``condition`` against the catalogue; what evaluating it needs."""
    checker = _Checker(catalogue, anniversaries)
    checker.condition(condition)
    return checker.needs


def _leaves(condition: ast.Condition) -> Iterator[ast.Condition]:
    """The conditions below the ANDs, ORs and NOTs of a query."""
    if isinstance(condition, ast.And | ast.Or):
        for item in condition.items:
            yield from _leaves(item)
    elif isinstance(condition, ast.Not):
        yield from _leaves(condition.item)
    else:
        yield condition


def _attributes(condition: ast.Condition) -> Iterator[ast.Attribute]:
    """Every attribute a condition of clauses names."""
    for leaf in _leaves(condition):
        if isinstance(leaf, ast.Comparison | ast.Between | ast.InList | ast.IsNull):
            yield leaf.attribute


def segment_references(condition: ast.Condition) -> Iterator[ast.InSegment]:
    """Every ``in_segment`` in a query."""
    for leaf in _leaves(condition):
        if isinstance(leaf, ast.InSegment):
            yield leaf


class Compiler:
    """Builds the matching profiles of checked queries at one evaluation instant."""

    def __init__(self, catalogue: Catalogue, as_of: datetime, anniversaries: frozenset[str] = ANNIVERSARY_NAMES) -> None:
        self.catalogue = catalogue
        self.as_of = as_of
        self.anniversaries = anniversaries
        self._checker = _Checker(catalogue, anniversaries)

    def row(self, sources: Sources, traits: set[str]) -> ir.Table:
        """The profile row with one JSON text column per trait the query names (those
        the profile rows do not carry already)."""
        row = sources.profiles
        wanted = sorted(t for t in traits if trait_column(t) not in row.columns)
        if not wanted:
            return row
        t = sources.traits.filter(sources.traits.trait.isin(wanted))
        # Any value, not the largest: a profile has one row per trait (the merged winner),
        # and choosing among strings costs comparisons (a second at a million profiles).
        pivot = t.group_by(_tp=t.profile_id).aggregate(
            **{trait_column(name): t.value.arbitrary(where=t.trait == name) for name in wanted}
        )
        joined = row.left_join(pivot, row.profile_id == pivot._tp)
        return joined.select(*row.columns, *(trait_column(n) for n in wanted))

    def matching(self, condition: ast.Condition, sources: Sources) -> ir.Table:
        """The distinct ``profile_id`` of the profiles in ``sources`` that match."""
        needs = requirements(condition, self.catalogue, self.anniversaries)
        row = self.row(sources, needs.traits)
        predicate = self._condition(condition, row, sources)
        return row.filter(predicate).select("profile_id")

    # -- profile clauses ----------------------------------------------------------------

    def _condition(self, node: ast.Condition, row: ir.Table, sources: Sources) -> ir.BooleanValue:
        if isinstance(node, ast.And):
            return _all(self._condition(i, row, sources) for i in node.items)
        if isinstance(node, ast.Or):
            return _any(self._condition(i, row, sources) for i in node.items)
        if isinstance(node, ast.Not):
            return ~self._condition(node.item, row, sources)
        if isinstance(node, ast.InSegment):
            members = sources.members(node.name)
            return row.profile_id.isin(members.profile_id)
        if isinstance(node, ast.Performed | ast.Stopped | ast.Restarted | ast.Funnel):
            assert sources.events is not None, "a behavioral query needs the events"
            found, complement = self._behavioral(node, sources.events)
            inside = row.profile_id.isin(found.profile_id)
            return ~inside if complement else inside
        info = self._checker.attribute(node.attribute)
        value = self._profile_value(row, node.attribute, info, _first_value(node))
        return self._clause(node, value, info)

    def _profile_value(self, row: ir.Table, attribute: ast.Attribute, info: AttributeInfo, like: ast.Value | None) -> ir.Value:
        if info.source != "trait":
            return row[attribute.name]
        path = attribute.name.removeprefix("traits.").split(".")
        text = row[trait_column(path[0])]
        if len(path) == 1:
            return _decode(text, info.kind)
        doc = text.cast(dt.JSON)
        for key in path[1:]:
            doc = doc[key]
        return _decode_json(doc, _kind_for(like))

    def _clause(self, node: ast.Condition, value: ir.Value, info: AttributeInfo) -> ir.BooleanValue:
        """One clause, two-valued (see the module's docstring)."""
        if isinstance(node, ast.IsNull):
            return value.notnull() if node.negated else value.isnull()
        assert isinstance(node, ast.Comparison | ast.Between | ast.InList)
        values = (
            (node.value,) if isinstance(node, ast.Comparison)
            else (node.low, node.high) if isinstance(node, ast.Between) else node.values
        )  # fmt: skip
        kind = info.kind if info.kind != "any" else _kind_for(values[0])
        if self._checker.is_anniversary(node.attribute, kind, values):
            return self._anniversary(node, value).fill_null(False)
        negated = getattr(node, "negated", False)
        if isinstance(node, ast.Between):
            low, high = (self._literal(v, kind) for v in (node.low, node.high))
            left = self._comparable(value, kind, node.low, node.high)
            test = left.between(low, high)
        elif isinstance(node, ast.InList):
            literals = [self._literal(v, kind) for v in node.values]
            if kind == "list":
                test = _any(value.contains(v) for v in literals)
            else:
                test = self._comparable(value, kind, *node.values).isin(literals)
        else:
            test = self._comparison(node, value, kind)
        test = test.fill_null(False)
        if negated:  # a missing value matches neither the clause nor its NOT form
            return value.notnull() & ~test
        return test

    def _comparison(self, node: ast.Comparison, value: ir.Value, kind: str) -> ir.BooleanValue:
        op = node.op
        if op in ("CONTAINS", "NOT CONTAINS"):
            test = value.contains(self._literal(node.value, kind))
            return value.notnull() & ~test.fill_null(False) if op == "NOT CONTAINS" else test
        if op in ("MATCHES", "NOT MATCHES"):
            test = value.re_search(str(node.value.value) if isinstance(node.value, ast.Literal) else "")
            return value.notnull() & ~test.fill_null(False) if op == "NOT MATCHES" else test
        left = self._comparable(value, kind, node.value)
        return _COMPARE[op](left, self._literal(node.value, kind))

    def _comparable(self, value: ir.Value, kind: str, *against: ast.Value) -> ir.Value:
        """A timestamp compared with dates is compared by its UTC day."""
        if kind == "timestamp" and all(isinstance(resolve_value(v, self.as_of), date) and
                                       not isinstance(resolve_value(v, self.as_of), datetime) for v in against):  # fmt: skip
            return value.date()
        if kind == "date" and any(isinstance(resolve_value(v, self.as_of), datetime) for v in against):
            return value.cast(dt.timestamp)
        return value

    def _literal(self, value: ast.Value, kind: str) -> ir.Value:
        if isinstance(value, ast.DateValue):
            resolved = resolve(value, self.as_of)
            if isinstance(resolved, datetime):
                return ibis.literal(resolved, type=dt.timestamp)
            return ibis.literal(resolved, type=dt.date)
        if kind == "number" and isinstance(value.value, int | float) and not isinstance(value.value, bool):
            return ibis.literal(float(value.value), type=dt.float64)
        return ibis.literal(value.value)

    def _anniversary(self, node: ast.Condition, value: ir.Value) -> ir.BooleanValue:
        key = value.month() * 100 + value.day()

        def day(v: ast.Value) -> date:
            assert isinstance(v, ast.DateValue)  # checked: anniversaries take dates
            return _day(resolve(v, self.as_of))

        keys: list[int] | None
        if isinstance(node, ast.Between):
            keys = anniversary_keys(day(node.low), day(node.high))
        elif isinstance(node, ast.InList):
            keys = sorted({k for v in node.values for k in anniversary_keys(day(v), day(v)) or []})
        else:
            assert isinstance(node, ast.Comparison)
            keys = anniversary_keys(day(node.value), day(node.value))
        if keys is None:
            return value.notnull()
        test = key.isin(keys)
        return value.notnull() & ~test if getattr(node, "negated", False) else test

    # -- behavioral conditions ----------------------------------------------------------

    def _events(self, events: ir.Table, step: ast.Performed | ast.Stopped | ast.Restarted) -> ir.Table:
        """The profile's events of ``step``'s name that its ``where`` admits, up to the
        evaluation's instant."""
        chosen = events.filter(events.event == step.event, events.timestamp <= self.as_of)
        if step.where is not None:
            chosen = chosen.filter(self._event_condition(step.where, chosen))
        return chosen

    def _behavioral(
        self, node: ast.Performed | ast.Stopped | ast.Restarted | ast.Funnel, events: ir.Table
    ) -> tuple[ir.Table, bool]:
        """The profiles (``profile_id``) the condition finds, and whether it matches
        exactly those (``False``) or everyone else (``True``: a count zero satisfies)."""
        if isinstance(node, ast.Funnel):
            return self._funnel(node, events), False
        if isinstance(node, ast.Performed) and node.count is not None:
            chosen = self._events(events, node)
            if node.within is not None:
                chosen = chosen.filter(chosen.timestamp >= window_start(node.within, self.as_of))
            counts = chosen.group_by("profile_id").aggregate(n=chosen.count())
            test = _COMPARE[node.count.op]
            if test(0, node.count.value):  # zero qualifies: all but those whose count fails
                return counts.filter(~test(counts.n, node.count.value)), True
            return counts.filter(test(counts.n, node.count.value)), False
        return self._found(node, events), False

    def _found(self, node: ast.Performed | ast.Stopped | ast.Restarted, events: ir.Table) -> ir.Table:
        chosen = self._events(events, node)
        if isinstance(node, ast.Stopped):
            latest = chosen.group_by("profile_id").aggregate(last=chosen.timestamp.max())
            return latest.filter(latest["last"] < window_start(node.for_, self.as_of))
        if isinstance(node, ast.Restarted):
            order = ibis.window(group_by=chosen.profile_id, order_by=[chosen.timestamp, chosen.seq])
            gaps = chosen.mutate(previous=chosen.timestamp.lag().over(order))
            restart = gaps.filter(
                gaps.previous.notnull(),
                gaps.timestamp >= window_start(node.within, self.as_of),
                gaps.timestamp.delta(gaps.previous, unit="microsecond") >= microseconds(node.after),
            )
            return restart.select("profile_id").distinct()
        if node.within is not None and not node.first:
            chosen = chosen.filter(chosen.timestamp >= window_start(node.within, self.as_of))
        if node.first:
            firsts = chosen.group_by("profile_id").aggregate(first=chosen.timestamp.min())
            if node.within is None:
                return firsts.select("profile_id")
            return firsts.filter(firsts["first"] >= window_start(node.within, self.as_of)).select("profile_id")
        return chosen.select("profile_id").distinct()

    def _funnel(self, node: ast.Funnel, events: ir.Table) -> ir.Table:
        """Steps in order, the last within ``node.within`` of the first: for each step's
        events, the latest start (the first step's time) of a completed earlier prefix
        before it; the latest start is the best, as it leaves the most time."""
        parts = []
        for number, step in enumerate(node.steps):
            chosen = self._events(events, step)
            if step.within is not None:
                chosen = chosen.filter(chosen.timestamp >= window_start(step.within, self.as_of))
            parts.append(chosen.select("profile_id", "seq", "timestamp", step=ibis.literal(number, type=dt.int64)))
        rows = ibis.union(*parts, distinct=False)
        rows = rows.mutate(start=ibis.ifelse(rows.step == 0, rows.timestamp, ibis.null(dt.timestamp)))
        # Ordered by time, then log order; an event that is two steps (A then A) sorts
        # its later step first, so it cannot complete a step of its own (and a row's own
        # value never counts: it is of another step than the one looked for).
        order = ibis.window(
            group_by=rows.profile_id, order_by=[rows.timestamp, rows.seq, ibis.desc(rows.step)], preceding=None, following=0
        )
        for number in range(1, len(node.steps)):
            before = ibis.ifelse(rows.step == number - 1, rows.start, ibis.null(dt.timestamp)).max().over(order)
            rows = rows.mutate(start=ibis.ifelse(rows.step == number, before, rows.start))
        done = rows.filter(rows.step == len(node.steps) - 1, rows.start.notnull())
        if node.within is not None:
            done = done.filter(done.timestamp.delta(done.start, unit="microsecond") <= microseconds(node.within))
        return done.select("profile_id").distinct()

    # -- event clauses ------------------------------------------------------------------

    def _event_condition(self, node: ast.Condition, events: ir.Table) -> ir.BooleanValue:
        if isinstance(node, ast.And):
            return _all(self._event_condition(i, events) for i in node.items)
        if isinstance(node, ast.Or):
            return _any(self._event_condition(i, events) for i in node.items)
        if isinstance(node, ast.Not):
            return ~self._event_condition(node.item, events)
        assert isinstance(node, ast.Comparison | ast.Between | ast.InList | ast.IsNull)
        name = node.attribute.name
        kind, description = event_field(name) or ("any", "")
        like = _first_value(node)
        if name.startswith(PROPERTIES + "."):
            text = events[property_column(name.removeprefix(PROPERTIES + "."))]
            kind = _kind_for(like)
            value = _decode_scalar_text(text, kind)
        else:
            value = events[name]
        return self._clause(node, value, AttributeInfo(name, kind, "event", description))


def _first_value(node: ast.Condition) -> ast.Value | None:
    if isinstance(node, ast.Comparison):
        return node.value
    if isinstance(node, ast.Between):
        return node.low
    if isinstance(node, ast.InList):
        return node.values[0]
    return None


def _kind_for(value: ast.Value | None) -> str:
    if value is None:
        return "string"
    kind = _value_kind(value)
    return "string" if kind == "null" else kind


def resolve_value(value: ast.Value, as_of: datetime) -> object:
    return resolve(value, as_of) if isinstance(value, ast.DateValue) else value.value


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _decode(text: ir.StringValue, kind: str) -> ir.Value:
    """A trait's JSON text as a value of its kind (NULL where a value is of another kind)."""
    if kind == "list":
        return text.cast(dt.JSON).array.map(lambda item: item.str)
    if kind == "object":
        return text
    return _decode_json(text.cast(dt.JSON), kind)


def _decode_json(doc: ir.Value, kind: str) -> ir.Value:
    if kind == "number":
        return doc.float
    if kind == "boolean":
        return doc.bool
    if kind in ("date", "timestamp"):
        return doc.str.substr(0, 10).try_cast(dt.date)
    return doc.str


def _decode_scalar_text(text: ir.StringValue, kind: str) -> ir.Value:
    """A property read from a message (plain text for scalars: facts.py's reader)."""
    if kind == "number":
        return text.try_cast(dt.float64)
    if kind == "boolean":
        return ibis.cases((text == "true", True), (text == "false", False), else_=ibis.null(dt.boolean))
    if kind in ("date", "timestamp"):
        return text.substr(0, 10).try_cast(dt.date)
    return text


def _all(items: Iterator[ir.BooleanValue]) -> ir.BooleanValue:
    result: ir.BooleanValue | None = None
    for item in items:
        result = item if result is None else result & item
    assert result is not None
    return result


def _any(items: Iterator[ir.BooleanValue]) -> ir.BooleanValue:
    result: ir.BooleanValue | None = None
    for item in items:
        result = item if result is None else result | item
    assert result is not None
    return result
