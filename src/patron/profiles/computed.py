"""Computed traits: declarations, each an Ibis aggregation over a profile's events.

Adding one is a declaration, not new plumbing::

    ComputedTrait("orders_90d", "Orders in the last 90 days",
                  lambda e: e.is_order.sum(where=e.timestamp >= now - 90 days))

Every trait sees the profile's event facts (facts.py: ``revenue``, ``channel``,
``device_type``, ... from :data:`COMPUTED_FACTS`, plus ``is_order``); a trait that needs
another field from inside messages declares it as a :class:`~patron.facts.Fact`. All
traits of a build run as one ``GROUP BY profile_id`` inside the engine.

**Merges.** An incremental build must not read a profile's whole history again for a
few new events (at 20,000,000 events, picking a few thousand profiles' events out of the
log costs seconds). A trait that declares ``merge`` is brought up to date from its
stored value and the same aggregate over the new events only: ``merge(old, new)`` gets
both rows (:class:`Sides`: ``.value`` is this trait, ``row["other"]`` any column) and
returns the value over all events. The build merges only when that is exact: the
profile kept its identifiers (new ones may join it) and every new event is at or after
its latest stored one; otherwise it computes the profile again from all its events. A
trait without ``merge`` is always computed from all events, which is correct, only
slower. Columns whose names start with ``_`` are state that merges need (how often each
category was seen, say): stored, never shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from patron.facts import Fact, JsonPath

ORDER_EVENT = "Order Completed"


class Sides:
    """One side (stored or new) of a merge: ``.value`` is the trait being merged,
    ``row[name]`` any column of the same row."""

    def __init__(self, table: ir.Table, prefix: str, name: str) -> None:
        self._table, self._prefix, self._name = table, prefix, name

    def __getitem__(self, column: str) -> ir.Value:
        return self._table[self._prefix + column]

    @property
    def value(self) -> ir.Value:
        return self[self._name]

    def of(self, name: str) -> Sides:
        """The same side, with ``.value`` another column."""
        return Sides(self._table, self._prefix, name)


Merge = Callable[[Sides, Sides], ir.Value]


@dataclass(frozen=True)
class ComputedTrait:
    name: str
    description: str
    aggregate: Callable[[ir.Table], ir.Scalar] | None
    """Over the profile's events; ``None`` for a trait derived from others (``derive``)."""
    facts: tuple[Fact, ...] = ()
    """Fields it reads from inside messages, beyond :data:`COMPUTED_FACTS`."""
    merge: Merge | None = None
    """``merge(old, new)``: the value over all events from the stored row and the row of
    the new events (see the module's docstring); ``None``: computed from all events."""
    derive: Callable[[ir.Table], ir.Value] | None = None
    """A value from the row of other traits (``row["order_count"]``), computed after them
    in every build, merged or not: the mean from a sum and a count, the most frequent
    category from the counts of each."""

    def __post_init__(self) -> None:
        if (self.aggregate is None) == (self.derive is None):
            raise ValueError(f"computed trait {self.name!r} needs exactly one of aggregate or derive")

    @property
    def mergeable(self) -> bool:
        return self.derive is not None or self.merge is not None


#: Merges of the common aggregates (``old`` stored, ``new`` over the new events only).
def EARLIEST(old: Sides, new: Sides) -> ir.Value:
    return ibis.least(old.value, new.value)  # LEAST skips NULLs on DuckDB and Spark


def LATEST(old: Sides, new: Sides) -> ir.Value:
    return ibis.greatest(old.value, new.value)


def ADD(old: Sides, new: Sides) -> ir.Value:
    """Counts and sums; a sum of no values is NULL, and stays so only if both are."""
    return ibis.coalesce(old.value + new.value, old.value, new.value)


def NEWER(old: Sides, new: Sides) -> ir.Value:
    """The latest value: the new events' one if they have any (they are the later ones)."""
    return ibis.coalesce(new.value, old.value)


def UNION(old: Sides, new: Sides) -> ir.Value:
    """Sorted distinct lists."""
    return old.value.concat(new.value).unique().sort()


def _channel(e: ir.Table, json: JsonPath) -> ir.Value:
    return ibis.cases(
        (e.type == "page", "web"),
        (e.type == "screen", "app"),
        (e.event.startswith("Email "), "email"),
        (json("context.channel").isin(["store", "pos"]), "store"),
        else_=ibis.null(dt.string),
    )


def _browser(e: ir.Table, json: JsonPath) -> ir.Value:
    agent = json("context.userAgent")
    return ibis.cases(
        (agent.contains("Edg/"), "Edge"),
        (agent.contains("OPR/") | agent.contains("Opera"), "Opera"),
        (agent.contains("Firefox/"), "Firefox"),
        (agent.contains("Chrome/") | agent.contains("Chromium/") | agent.contains("CriOS/"), "Chrome"),
        (agent.contains("Safari/"), "Safari"),
        else_=ibis.null(dt.string),
    )


def _shopping(field: str) -> Callable[[ir.Table, JsonPath], ir.Value]:
    def extract(e: ir.Table, json: JsonPath) -> ir.Value:
        shopping = e.event.isin([ORDER_EVENT, "Product Viewed", "Product Added", "Product Clicked"])
        value = ibis.coalesce(json(f"properties.{field}"), json(f"properties.products[0].{field}"))
        return ibis.ifelse(shopping, value, ibis.null(dt.string))

    return extract


def _of_groups(value: Callable[[ir.Table, JsonPath], ir.Value]) -> Callable[[ir.Table, JsonPath], ir.Value]:
    def extract(e: ir.Table, json: JsonPath) -> ir.Value:
        return ibis.ifelse(e.type == "group", value(e, json), ibis.null(dt.string))

    return extract


def _revenue(e: ir.Table, json: JsonPath) -> ir.Value:
    amount = ibis.coalesce(json("properties.revenue").try_cast(dt.float64), json("properties.total").try_cast(dt.float64))
    return ibis.ifelse(e.event == ORDER_EVENT, amount, ibis.null(dt.float64))


#: Fields the default computed traits read, extracted once per event (facts.py).
COMPUTED_FACTS: tuple[Fact, ...] = (
    Fact("revenue", _revenue, "An order's revenue (or total)"),
    Fact("category", _shopping("category"), "Category of a product viewed, added or ordered"),
    Fact("brand", _shopping("brand"), "Brand of a product viewed, added or ordered"),
    Fact("channel", _channel, "web (pages), app (screens), email, store"),
    Fact("browser", _browser, "Browser from context.userAgent"),
    Fact("device_type", lambda e, json: json("context.device.type")),
    Fact("os_name", lambda e, json: json("context.os.name")),
    Fact("locale", lambda e, json: json("context.locale")),
    Fact("campaign", lambda e, json: json("context.campaign.name")),
    Fact("company", _of_groups(lambda e, json: json("traits.name"))),
    Fact("industry", _of_groups(lambda e, json: json("traits.industry"))),
    Fact("group", _of_groups(lambda e, json: e.group_id)),
)


def facts_for(traits: tuple[ComputedTrait, ...]) -> tuple[Fact, ...]:
    """The facts the given computed traits read: the defaults and each trait's own."""
    facts = {f.name: f for f in COMPUTED_FACTS}
    for trait in traits:
        facts.update({f.name: f for f in trait.facts})
    return tuple(facts.values())


def _distinct(column: str) -> Callable[[ir.Table], ir.Scalar]:
    def aggregate(e: ir.Table) -> ir.Scalar:
        # Sorted after collecting: an ordered aggregate is not portable (PySpark refuses it).
        seen = e[column].collect(distinct=True).sort()
        return ibis.coalesce(seen, ibis.literal([], type=dt.Array(dt.string)))  # none seen: an empty list

    return aggregate


_COUNTS = dt.Array(dt.Struct({"value": dt.string, "n": dt.int64}))


def _value_counts(column: str) -> Callable[[ir.Table], ir.Scalar]:
    """How often each value of ``column`` was seen: ``[{value, n}, ...]`` in value order
    (the state of the most-frequent traits)."""

    def aggregate(e: ir.Table) -> ir.Scalar:
        values = e[column].collect(where=e[column].notnull())
        distinct = values.unique().sort()
        counts = distinct.map(lambda x: values.filter(lambda y: y == x).length().cast(dt.int64))
        pairs = distinct.zip(counts).map(lambda p: ibis.struct({"value": p["f1"], "n": p["f2"]}))
        return ibis.coalesce(pairs, ibis.literal([], type=_COUNTS))

    return aggregate


def _add_counts(old: Sides, new: Sides) -> ir.Value:
    both = old.value.concat(new.value)
    distinct = both.map(lambda p: p["value"]).unique().sort()

    def total(v: ir.Value) -> ir.Value:
        # DuckDB sums BIGINTs into a 128-bit integer while Ibis types the sum int64 (and
        # so drops a cast to int64): the cast through int32 keeps the state's type.
        return both.filter(lambda p: p["value"] == v).map(lambda p: p["n"]).sums().cast(dt.int32).cast(dt.int64)

    return distinct.map(lambda v: ibis.struct({"value": v, "n": total(v)}))


def _ranked(counts: ir.ArrayValue) -> ir.ArrayValue:
    """Values most frequent first; equally frequent ones in sort order (a plain ``mode``
    picks any, and the trait would change between builds)."""
    return counts.map(lambda p: ibis.struct({"minus_n": -p["n"], "value": p["value"]})).sort().map(lambda p: p["value"])


def _top(state: str, k: int | None) -> Callable[[ir.Table], ir.Value]:
    """The most frequent value (``k`` None) or the top ``k``, from a counts column."""

    def derive(row: ir.Table) -> ir.Value:
        ranked = _ranked(row[state])
        if k is not None:
            return ranked[:k]
        # Guarded: Spark (ANSI mode) raises on the first element of an empty list.
        return ibis.ifelse(ranked.length() > 0, ranked[0], ibis.null(dt.string))

    return derive


def _latest(column: str) -> Callable[[ir.Table], ir.Scalar]:
    def aggregate(e: ir.Table) -> ir.Scalar:
        return e[column].argmax(e.timestamp, where=e[column].notnull())

    return aggregate


def _days_between_orders(row: ir.Table) -> ir.Value:
    n = row["order_count"]
    span_days = row["last_order_at"].delta(row["first_order_at"], unit="second").cast("float64") / 86400.0
    return ibis.ifelse(n > 1, span_days / (n - 1).cast("float64"), ibis.null(dt.float64))


def _mean_order_value(row: ir.Table) -> ir.Value:
    n = row["_revenue_values"]
    return ibis.ifelse(n > 0, row["total_revenue"] / n.cast("float64"), ibis.null(dt.float64))


def _trait(name: str, description: str, aggregate: Callable[[ir.Table], ir.Scalar], merge: Merge) -> ComputedTrait:
    return ComputedTrait(name, description, aggregate, merge=merge)


def _derived(name: str, description: str, derive: Callable[[ir.Table], ir.Value]) -> ComputedTrait:
    return ComputedTrait(name, description, None, derive=derive)


DEFAULT_COMPUTED_TRAITS: tuple[ComputedTrait, ...] = (
    _trait("first_seen", "Time of the profile's first event", lambda e: e.timestamp.min(), EARLIEST),
    _trait("last_seen", "Time of the profile's latest event", lambda e: e.timestamp.max(), LATEST),
    _trait("event_count", "Events of any kind", lambda e: e.count(), ADD),
    _trait("first_order_at", "Time of the first Order Completed", lambda e: e.timestamp.min(where=e.is_order), EARLIEST),
    _trait("last_order_at", "Time of the latest Order Completed", lambda e: e.timestamp.max(where=e.is_order), LATEST),
    _trait("order_count", "Order Completed events", lambda e: e.count(where=e.is_order), ADD),
    _trait("total_revenue", "Sum of order revenue (or total)", lambda e: e.revenue.sum(), ADD),
    _trait("_revenue_values", "Orders with a revenue (for the mean)", lambda e: e.revenue.count(), ADD),
    _derived("average_order_value", "Revenue per order", _mean_order_value),
    _derived("avg_days_between_orders", "Mean days between consecutive orders", _days_between_orders),
    # Contextual: where and how the person meets the brand.
    _trait("channels", "Channels used: web (pages), app (screens), email, store", _distinct("channel"), UNION),
    _trait("device_types", "Device types seen (context.device.type)", _distinct("device_type"), UNION),
    _trait("operating_systems", "Operating systems seen (context.os.name)", _distinct("os_name"), UNION),
    _trait("locales", "Locales seen (context.locale)", _distinct("locale"), UNION),
    _trait("browsers", "Browsers seen (from context.userAgent)", _distinct("browser"), UNION),
    _trait("_category_counts", "How often each category was seen", _value_counts("category"), _add_counts),
    _trait("_brand_counts", "How often each brand was seen", _value_counts("brand"), _add_counts),
    _derived("top_category", "Most frequent category of products viewed, added or ordered", _top("_category_counts", None)),
    _derived("top_brand", "Most frequent brand of products viewed, added or ordered", _top("_brand_counts", None)),
    _derived("top_categories", "Up to three categories, most frequent first", _top("_category_counts", 3)),
    _derived("top_brands", "Up to three brands, most frequent first", _top("_brand_counts", 3)),
    _trait("last_campaign", "The latest campaign engaged (context.campaign.name)", _latest("campaign"), NEWER),
    # Firmographic: from group calls.
    _trait("company", "Company of the latest group call (traits.name)", _latest("company"), NEWER),
    _trait("industry", "Industry of the latest group call", _latest("industry"), NEWER),
    _trait("group_id", "Group of the latest group call", _latest("group"), NEWER),
)

#: The build's own bookkeeping column: the time of the profile's latest event, which
#: decides whether new events can be merged (they must not be older).
LAST_EVENT = "_last_event_at"


def _with_derived(row: ir.Table, traits: tuple[ComputedTrait, ...]) -> ir.Table:
    """The traits in declared order, derived ones computed from the row's others."""
    values = {t.name: t.derive(row) if t.derive is not None else row[t.name] for t in traits}
    return row.select("profile_id", **values, **{LAST_EVENT: row[LAST_EVENT]})


def computed_traits(attributed: ir.Table, traits: tuple[ComputedTrait, ...] = DEFAULT_COMPUTED_TRAITS) -> ir.Table:
    """One row per profile, one column per computed trait (and :data:`LAST_EVENT`)."""
    events = attributed.mutate(is_order=attributed.event == ORDER_EVENT)
    aggregates = {t.name: t.aggregate(events) for t in traits if t.aggregate is not None}
    row = events.group_by("profile_id").aggregate(**aggregates, **{LAST_EVENT: events.timestamp.max()})
    return _with_derived(row, traits)


def merge_computed(old: ir.Table, new: ir.Table, traits: tuple[ComputedTrait, ...] = DEFAULT_COMPUTED_TRAITS) -> ir.Table:
    """Rows of ``new`` (computed traits of the new events only) brought together with the
    stored rows ``old`` of the same profiles: each trait's ``merge``, or the new row as
    it is where no row is stored; derived traits computed again. Every aggregated trait
    must declare a merge."""
    merges = {t.name: t.merge for t in traits if t.aggregate is not None} | {LAST_EVENT: LATEST}
    stored = old.select(_o_profile_id=old.profile_id, **{f"_o_{c}": old[c] for c in merges})
    joined = new.left_join(stored, new.profile_id == stored._o_profile_id)
    was_stored = joined._o_profile_id.notnull()
    values = {}
    for column, merge in merges.items():
        assert merge is not None, f"{column} declares no merge"
        value = merge(Sides(joined, "_o_", column), Sides(joined, "", column))
        values[column] = ibis.ifelse(was_stored, value, joined[column]).cast(new[column].type())
    return _with_derived(joined.select("profile_id", **values), traits)
