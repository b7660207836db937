"""Computed traits: declarations, each an Ibis aggregation over a profile's events.

Adding one is a declaration, not new plumbing::

    ComputedTrait("orders_90d", "Orders in the last 90 days",
                  lambda e: e.is_order.sum(where=e.timestamp >= now - 90 days))

Every trait sees the attributed events with helper columns (``is_order``, ``revenue``);
all traits of a build run as one ``GROUP BY profile_id`` inside the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

ORDER_EVENT = "Order Completed"


@dataclass(frozen=True)
class ComputedTrait:
    name: str
    description: str
    aggregate: Callable[[ir.Table], ir.Scalar]


def _prepared(attributed: ir.Table) -> ir.Table:
    doc = attributed.raw.cast(dt.JSON)
    context = doc["context"]
    is_order = attributed.event == ORDER_EVENT
    revenue = ibis.coalesce(doc["properties"]["revenue"].float, doc["properties"]["total"].float)
    is_group = attributed.type == "group"
    channel = (
        ibis.cases(
            (attributed.type == "page", "web"),
            (attributed.type == "screen", "app"),
            (attributed.event.startswith("Email "), "email"),
            (context["channel"].str.isin(["store", "pos"]), "store"),
            else_=ibis.null(dt.string),
        )
    )
    agent = context["userAgent"].str
    browser = ibis.cases(
        (agent.contains("Edg/"), "Edge"),
        (agent.contains("OPR/") | agent.contains("Opera"), "Opera"),
        (agent.contains("Firefox/"), "Firefox"),
        (agent.contains("Chrome/") | agent.contains("Chromium/") | agent.contains("CriOS/"), "Chrome"),
        (agent.contains("Safari/"), "Safari"),
        else_=ibis.null(dt.string),
    )
    properties = doc["properties"]
    shopping = attributed.event.isin([ORDER_EVENT, "Product Viewed", "Product Added", "Product Clicked"])
    category = ibis.coalesce(properties["category"].str, properties["products"][0]["category"].str)
    brand = ibis.coalesce(properties["brand"].str, properties["products"][0]["brand"].str)
    return attributed.mutate(
        browser=browser,
        category=ibis.ifelse(shopping, category, ibis.null(dt.string)),
        brand=ibis.ifelse(shopping, brand, ibis.null(dt.string)),
        is_order=is_order,
        revenue=ibis.ifelse(is_order, revenue, ibis.null(dt.float64)),
        channel=channel,
        device_type=context["device"]["type"].str,
        os_name=context["os"]["name"].str,
        locale=context["locale"].str,
        campaign=context["campaign"]["name"].str,
        company=ibis.ifelse(is_group, doc["traits"]["name"].str, ibis.null(dt.string)),
        industry=ibis.ifelse(is_group, doc["traits"]["industry"].str, ibis.null(dt.string)),
        group=ibis.ifelse(is_group, attributed.group_id, ibis.null(dt.string)),
    )


def _distinct(column: str) -> Callable[[ir.Table], ir.Scalar]:
    def aggregate(e: ir.Table) -> ir.Scalar:
        seen = e[column].collect(distinct=True, order_by=e[column])
        return ibis.coalesce(seen, ibis.literal([], type=dt.Array(dt.string)))  # none seen: an empty list

    return aggregate


def _most_frequent(column: str) -> Callable[[ir.Table], ir.Scalar]:
    def aggregate(e: ir.Table) -> ir.Scalar:
        return e[column].mode(where=e[column].notnull())

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
    ComputedTrait("last_campaign", "The latest campaign engaged (context.campaign.name)", _latest("campaign")),
    # Firmographic: from group calls.
    ComputedTrait("company", "Company of the latest group call (traits.name)", _latest("company")),
    ComputedTrait("industry", "Industry of the latest group call", _latest("industry")),
    ComputedTrait("group_id", "Group of the latest group call", _latest("group")),
)


def computed_traits(attributed: ir.Table, traits: tuple[ComputedTrait, ...] = DEFAULT_COMPUTED_TRAITS) -> ir.Table:
    """One row per profile, one column per computed trait."""
    events = _prepared(attributed)
    return events.group_by("profile_id").aggregate(**{t.name: t.aggregate(events) for t in traits})
