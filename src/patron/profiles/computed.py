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
    is_order = attributed.event == ORDER_EVENT
    revenue = ibis.coalesce(doc["properties"]["revenue"].float, doc["properties"]["total"].float)
    return attributed.mutate(is_order=is_order, revenue=ibis.ifelse(is_order, revenue, ibis.null(dt.float64)))


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
)


def computed_traits(attributed: ir.Table, traits: tuple[ComputedTrait, ...] = DEFAULT_COMPUTED_TRAITS) -> ir.Table:
    """One row per profile, one column per computed trait."""
    events = _prepared(attributed)
    return events.group_by("profile_id").aggregate(**{t.name: t.aggregate(events) for t in traits})
