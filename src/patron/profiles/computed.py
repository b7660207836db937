"""Computed traits: declarations, each an Ibis aggregation over a profile's events.

Adding one is a declaration, not new plumbing::

    ComputedTrait("orders_90d", "Orders in the last 90 days",
                  lambda e: e.is_order.sum(where=e.timestamp >= now - 90 days))

Every trait sees the profile's event facts (facts.py: ``revenue``, ``channel``,
``device_type``, ... from :data:`COMPUTED_FACTS`, plus ``is_order``); a trait that needs
another field from inside messages declares it as a :class:`~patron.facts.Fact`. All
traits of a build run as one ``GROUP BY profile_id`` inside the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from patron.facts import Fact, JsonPath

ORDER_EVENT = "Order Completed"


@dataclass(frozen=True)
class ComputedTrait:
    name: str
    description: str
    aggregate: Callable[[ir.Table], ir.Scalar]
    facts: tuple[Fact, ...] = ()
    """Fields it reads from inside messages, beyond :data:`COMPUTED_FACTS`."""


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
        seen = e[column].collect(distinct=True, order_by=e[column])
        return ibis.coalesce(seen, ibis.literal([], type=dt.Array(dt.string)))  # none seen: an empty list

    return aggregate


def _ranked(e: ir.Table, column: str) -> ir.ArrayValue:
    """The column's values, most frequent first; equally frequent ones in sort order (a
    plain ``mode`` picks any, and the trait would change between builds)."""
    values = e[column].collect(where=e[column].notnull())
    distinct = values.unique().sort()
    counts = distinct.map(lambda x: values.filter(lambda y: y == x).length())
    return counts.map(lambda n: -n).zip(distinct).sort().map(lambda pair: pair["f2"])


def _most_frequent(column: str) -> Callable[[ir.Table], ir.Scalar]:
    def aggregate(e: ir.Table) -> ir.Scalar:
        return _ranked(e, column)[0]

    return aggregate


def _top(column: str, k: int = 3) -> Callable[[ir.Table], ir.Scalar]:
    def aggregate(e: ir.Table) -> ir.Scalar:
        return ibis.coalesce(_ranked(e, column)[:k], ibis.literal([], type=dt.Array(dt.string)))

    return aggregate


def _latest(column: str) -> Callable[[ir.Table], ir.Scalar]:
    def aggregate(e: ir.Table) -> ir.Scalar:
        return e[column].argmax(e.timestamp, where=e[column].notnull())

    return aggregate


def _avg_days_between_orders(e: ir.Table) -> ir.Scalar:
    first = e.timestamp.min(where=e.is_order)
    last = e.timestamp.max(where=e.is_order)
    n = e.count(where=e.is_order)
    span_days = last.delta(first, unit="second").cast("float64") / 86400.0
    return ibis.ifelse(n > 1, span_days / (n - 1).cast("float64"), ibis.null(dt.float64))


DEFAULT_COMPUTED_TRAITS: tuple[ComputedTrait, ...] = (
    ComputedTrait("first_seen", "Time of the profile's first event", lambda e: e.timestamp.min()),
    ComputedTrait("last_seen", "Time of the profile's latest event", lambda e: e.timestamp.max()),
    ComputedTrait("event_count", "Events of any kind", lambda e: e.count()),
    ComputedTrait("first_order_at", "Time of the first Order Completed", lambda e: e.timestamp.min(where=e.is_order)),
    ComputedTrait("last_order_at", "Time of the latest Order Completed", lambda e: e.timestamp.max(where=e.is_order)),
    ComputedTrait("order_count", "Order Completed events", lambda e: e.count(where=e.is_order)),
    ComputedTrait("total_revenue", "Sum of order revenue (or total)", lambda e: e.revenue.sum()),
    ComputedTrait("average_order_value", "Revenue per order", lambda e: e.revenue.mean()),
    ComputedTrait("avg_days_between_orders", "Mean days between consecutive orders", _avg_days_between_orders),
    # Contextual: where and how the person meets the brand.
    ComputedTrait("channels", "Channels used: web (pages), app (screens), email, store", _distinct("channel")),
    ComputedTrait("device_types", "Device types seen (context.device.type)", _distinct("device_type")),
    ComputedTrait("operating_systems", "Operating systems seen (context.os.name)", _distinct("os_name")),
    ComputedTrait("locales", "Locales seen (context.locale)", _distinct("locale")),
    ComputedTrait("browsers", "Browsers seen (from context.userAgent)", _distinct("browser")),
    ComputedTrait("top_category", "Most frequent category of products viewed, added or ordered", _most_frequent("category")),
    ComputedTrait("top_brand", "Most frequent brand of products viewed, added or ordered", _most_frequent("brand")),
    ComputedTrait("top_categories", "Up to three categories, most frequent first", _top("category")),
    ComputedTrait("top_brands", "Up to three brands, most frequent first", _top("brand")),
    ComputedTrait("last_campaign", "The latest campaign engaged (context.campaign.name)", _latest("campaign")),
    # Firmographic: from group calls.
    ComputedTrait("company", "Company of the latest group call (traits.name)", _latest("company")),
    ComputedTrait("industry", "Industry of the latest group call", _latest("industry")),
    ComputedTrait("group_id", "Group of the latest group call", _latest("group")),
)


def computed_traits(attributed: ir.Table, traits: tuple[ComputedTrait, ...] = DEFAULT_COMPUTED_TRAITS) -> ir.Table:
    """One row per profile, one column per computed trait."""
    events = attributed.mutate(is_order=attributed.event == ORDER_EVENT)
    return events.group_by("profile_id").aggregate(**{t.name: t.aggregate(events) for t in traits})
