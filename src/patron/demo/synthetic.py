"""Deterministic synthetic customer data, labelled as synthetic in the data itself.

The real CDNOW purchase log has no web sessions, email engagement, surveys, campaign
channels or demographics. This module makes them up, reproducibly from a seed, so the
demo, the tests and the benchmarks can have data of any size. Every message it makes
says what it is::

    context.synthetic = true
    context.generator = "patron.demo.synthetic"
    context.dataset   = "Patron synthetic (seed <seed>)"

and uses names no real person or shop has (``@example.com`` addresses, the
``shop.example.com`` site).

Public API:

* :func:`synthetic_orders` -- an order-lines table of any size, in the columns
  ``patron import orders`` reads by default (for the 1,000,000-row benchmark).
* :func:`synthetic_events` -- a stream of Segment messages for ``n`` made-up customers:
  identify, page views with UTM campaigns, orders, email engagement, NPS answers.
* :func:`customer_messages` -- the same for one customer whose purchase dates are known
  (the demo gives each real CDNOW customer a synthetic life around their real purchases).

Examples:
    >>> table = synthetic_orders(1_000, seed=7)
    >>> table.num_rows
    1000
    >>> first = next(synthetic_events(1, seed=7))
    >>> first["type"], first["context"]["synthetic"]
    ('identify', True)
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

GENERATOR = "patron.demo.synthetic"
SITE = "https://shop.example.com"

_FIRST = ("Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Robin",
          "Avery", "Quinn", "Charlie", "Drew", "Emery", "Finley", "Harper", "Kai", "Lee",
          "Noa", "Rowan", "Sasha", "Toni", "Yuki", "Mika")
_LAST = ("Example", "Sample", "Testwood", "Mockridge", "Placeholder", "Demoson", "Fakeley",
         "Synthwaite", "Modelton", "Dummett", "Specimen", "Prototyp")
_CITIES = (("Springfield", "US"), ("Riverton", "US"), ("Lakeside", "US"), ("Fairview", "US"),
           ("Georgetown", "US"), ("Franklin", "US"), ("Toronto", "CA"), ("London", "GB"))
_GENDERS = ("female", "male", "non-binary", "undisclosed")
_GENDER_WEIGHTS = (0.47, 0.47, 0.02, 0.04)
#: Acquisition channels as UTM triples (source, medium, campaign); None is direct traffic.
_CHANNELS: tuple[tuple[tuple[str, str, str] | None, float], ...] = (
    (("google", "cpc", "brand-search"), 0.25),
    (("google", "organic", "seo"), 0.20),
    (("facebook", "paid_social", "new-releases"), 0.15),
    (("partner-zine", "referral", "music-partners"), 0.10),
    (("newsletter", "email", "welcome-series"), 0.10),
    (None, 0.20),
)
_PAGES = (("Home", "/"), ("Catalog", "/catalog"), ("Product", "/product"), ("Search", "/search"))
_CATEGORIES = ("Rock", "Pop", "Jazz", "Classical", "Hip-Hop", "Country", "Electronic", "Folk")


@dataclass(frozen=True)
class EmailCampaign:
    """A made-up email campaign sent to every subscribed customer signed up by then."""

    campaign_id: str
    name: str
    subject: str
    sent: datetime


def email_campaigns(start: date, end: date, every_days: int = 91) -> list[EmailCampaign]:
    """Campaigns every ``every_days`` from a month after ``start`` until ``end``."""
    out: list[EmailCampaign] = []
    day = start + timedelta(days=30)
    while day <= end:
        number = len(out) + 1
        out.append(
            EmailCampaign(
                f"campaign-{number:03d}",
                f"Seasonal picks #{number}",
                f"New arrivals for you ({day:%B %Y})",
                datetime.combine(day, time(9, 0)),
            )
        )
        day += timedelta(days=every_days)
    return out


@dataclass(frozen=True)
class CustomerHistory:
    """A customer whose purchases are known: the anchor for their synthetic life."""

    user_id: str
    purchases: tuple[date, ...]
    """Purchase dates, ascending (at least one)."""


def customer_messages(
    history: CustomerHistory,
    *,
    seed: int,
    end: date,
    campaigns: Sequence[EmailCampaign] = (),
    include_orders: bool = False,
) -> list[dict[str, Any]]:
    """Synthetic messages for one customer, consistent with their purchase dates.

    The customer signs up up to three weeks before the first purchase (``identify``
    with demographics), browses in a session on each purchase day (``page`` views, the
    first carrying the acquisition campaign), browses now and then without buying,
    receives the campaigns sent after signing up (``Email Delivered``, some
    ``Email Opened`` and ``Email Link Clicked``; more for frequent buyers), and some
    answer an NPS survey after the first purchase (``Survey Response Submitted``,
    scores higher for repeat buyers). Nothing is dated after ``end``.

    Args:
        seed: with ``history.user_id``, fixes every random choice: the same inputs
            always give the same messages, whatever other customers are generated.
        include_orders: also make an ``Order Completed`` per purchase (for fully
            synthetic customers; the demo's orders are real).

    Returns:
        Messages in time order, each with a deterministic ``messageId``.
    """
    rng = random.Random(f"{seed}:{history.user_id}")
    maker = _Messages(history.user_id, seed)
    first_purchase = history.purchases[0]
    signup = datetime.combine(first_purchase, time(0)) - timedelta(
        days=rng.randint(0, 21), seconds=rng.randint(8 * 3600, 22 * 3600)
    )
    if signup.date() < first_purchase and rng.random() < 0.3:
        signup = datetime.combine(first_purchase, time(rng.randint(7, 11), rng.randint(0, 59)))
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, country = rng.choice(_CITIES)
    number = history.user_id.rsplit("-", 1)[-1]
    channel = rng.choices([c for c, _ in _CHANNELS], [w for _, w in _CHANNELS])[0]
    maker.add(
        "identify",
        signup,
        traits={
            "email": f"{first}.{last}.{number}@example.com".lower(),
            "firstName": first,
            "lastName": last,
            "age": rng.randint(18, 75),
            "gender": rng.choices(_GENDERS, _GENDER_WEIGHTS)[0],
            "address": {"city": city, "country": country},
            "createdAt": _iso(signup),
            "acquisitionChannel": channel[0] if channel else "direct",
        },
    )
    repeat = len(history.purchases)
    for number_of_purchase, day in enumerate(history.purchases):
        start = datetime.combine(day, time(rng.randint(8, 21), rng.randint(0, 59)))
        start = max(start, signup + timedelta(minutes=1))
        campaign = channel if number_of_purchase == 0 else _later_channel(rng)
        last_view = _session(maker, rng, start, campaign, checkout=True)
        if include_orders:
            _order(maker, rng, last_view + timedelta(minutes=rng.randint(1, 9)), number_of_purchase)
    window = max((end - signup.date()).days, 1)
    for _ in range(_poisson(rng, 0.8)):
        day = signup.date() + timedelta(days=rng.randrange(window))
        _session(maker, rng, datetime.combine(day, time(rng.randint(7, 22), rng.randint(0, 59))),
                 _later_channel(rng), checkout=False)
    if rng.random() < 0.85:  # subscribed to email
        open_rate = min(0.15 + 0.06 * repeat, 0.6)
        for campaign_sent in campaigns:
            if campaign_sent.sent <= signup or campaign_sent.sent.date() > end:
                continue
            props = {
                "campaign_id": campaign_sent.campaign_id,
                "campaign_name": campaign_sent.name,
                "email_subject": campaign_sent.subject,
            }
            delivered = campaign_sent.sent + timedelta(seconds=rng.randint(0, 3600))
            maker.add("track", delivered, event="Email Delivered", properties=props)
            if rng.random() < open_rate:
                opened = delivered + timedelta(minutes=rng.randint(5, 2 * 24 * 60))
                maker.add("track", opened, event="Email Opened", properties=props)
                if rng.random() < 0.3:
                    clicked = opened + timedelta(seconds=rng.randint(5, 600))
                    link = {**props, "link_url": f"{SITE}/catalog?utm_campaign={campaign_sent.campaign_id}"}
                    maker.add("track", clicked, event="Email Link Clicked", properties=link)
    if rng.random() < 0.3:
        asked = datetime.combine(first_purchase, time(rng.randint(8, 20))) + timedelta(
            days=rng.randint(14, 30)
        )
        if asked.date() <= end:
            base = 7 if repeat > 1 else 5
            score = max(0, min(10, round(rng.gauss(base + min(repeat, 6) * 0.3, 2))))
            maker.add(
                "track",
                asked,
                event="Survey Response Submitted",
                properties={
                    "survey_id": "nps-synthetic",
                    "question": "How likely are you to recommend us to a friend? (0-10)",
                    "score": score,
                    "nps_category": "promoter" if score >= 9 else "passive" if score >= 7 else "detractor",
                },
            )
    return sorted(maker.messages, key=lambda m: m["timestamp"])


def synthetic_events(
    n_customers: int,
    seed: int = 0,
    *,
    start: date = date(2024, 1, 1),
    end: date = date(2024, 12, 31),
) -> Iterator[dict[str, Any]]:
    """Messages for ``n_customers`` made-up customers (``synthetic-<seed>-<n>``).

    Each customer gets random purchase dates in ``[start, end]`` and then the life
    :func:`customer_messages` describes, orders included: about 22 messages of about
    400 bytes a customer, made at about 100,000 messages a second on one core.
    Generation is lazy, one customer at a time, so any size fits in memory.

    Args:
        n_customers: how many customers.
        seed: the same seed always yields the same messages, in the same order.
    """
    campaigns = email_campaigns(start, end, every_days=30)
    days = (end - start).days + 1
    for n in range(n_customers):
        user_id = f"synthetic-{seed}-{n}"
        rng = random.Random(f"{seed}:purchases:{user_id}")
        count = 1 + _poisson(rng, 1.5)
        purchases = sorted(start + timedelta(days=rng.randrange(days)) for _ in range(count))
        history = CustomerHistory(user_id, tuple(purchases))
        yield from customer_messages(
            history, seed=seed, end=end, campaigns=campaigns, include_orders=True
        )


def synthetic_orders(
    n_rows: int,
    seed: int = 0,
    *,
    n_customers: int | None = None,
    n_products: int = 2_000,
    start: date = date(2024, 1, 1),
    days: int = 365,
) -> pa.Table:
    """Order lines in the columns ``patron import orders`` maps by default.

    Columns: ``order_id``, ``customer_id``, ``email``, ``timestamp`` (ISO text),
    ``currency``, ``product_id``, ``sku``, ``product_name``, ``price``, ``quantity``,
    ``category``. An order has 1 to about 6 lines (2.5 on average); rows of one order
    are adjacent. Write it with ``pyarrow.csv.write_csv`` or ``pyarrow.parquet``.

    Args:
        n_rows: exact number of rows (lines).
        seed: the same seed gives the same table.
        n_customers: distinct customers (default: one per 10 rows).
    """
    rng = np.random.default_rng(seed)
    n_customers = n_customers or max(1, n_rows // 10)
    lines = 1 + rng.poisson(1.5, size=max(1, n_rows))
    ends = np.cumsum(lines)
    n_orders = int(np.searchsorted(ends, n_rows) + 1) if n_rows else 0
    order_of_row = np.repeat(np.arange(n_orders), lines[:n_orders])[:n_rows]
    customer_of_order = rng.integers(0, n_customers, size=n_orders)
    seconds = rng.integers(0, days * 86_400, size=n_orders)
    product_of_row = rng.integers(0, n_products, size=n_rows)
    quantity = 1 + rng.poisson(0.3, size=n_rows)
    catalog_price = np.round(rng.uniform(2.0, 80.0, size=n_products), 2)

    order_ids = pa.array([f"SO-{seed}-{i:08d}" for i in range(n_orders)])
    customers = pa.array([f"synthetic-{seed}-{c}" for c in range(n_customers)])
    emails = pa.array([f"customer.{seed}.{c}@example.com" for c in range(n_customers)])
    base = datetime.combine(start, time(0))
    stamps = pa.array(
        [(base + timedelta(seconds=int(s))).isoformat() + "Z" for s in seconds], pa.string()
    )
    products = pa.array([f"P{p:05d}" for p in range(n_products)])
    skus = pa.array([f"SKU-{p:05d}" for p in range(n_products)])
    names = pa.array([f"Synthetic product {p}" for p in range(n_products)])
    categories = pa.array([_CATEGORIES[p % len(_CATEGORIES)] for p in range(n_products)])

    customer_of_row = pa.array(customer_of_order[order_of_row])
    order_index = pa.array(order_of_row)
    product_index = pa.array(product_of_row)
    return pa.table(
        {
            "order_id": order_ids.take(order_index),
            "customer_id": customers.take(customer_of_row),
            "email": emails.take(customer_of_row),
            "timestamp": stamps.take(order_index),
            "currency": pa.array(["USD"] * n_rows, pa.string()),
            "product_id": products.take(product_index),
            "sku": skus.take(product_index),
            "product_name": names.take(product_index),
            "price": pa.array(catalog_price[product_of_row]),
            "quantity": pa.array(quantity),
            "category": categories.take(product_index),
        }
    )


class _Messages:
    """Collects one customer's messages, labelling each and numbering their ids."""

    def __init__(self, user_id: str, seed: int) -> None:
        self.user_id = user_id
        self.seed = seed
        self.messages: list[dict[str, Any]] = []
        self.context = {
            "synthetic": True,
            "generator": GENERATOR,
            "dataset": f"Patron synthetic (seed {seed})",
        }

    def add(self, kind: str, at: datetime, *, campaign: tuple[str, str, str] | None = None,
            **fields: Any) -> None:
        context: dict[str, Any] = dict(self.context)
        if campaign is not None:
            context["campaign"] = {"source": campaign[0], "medium": campaign[1], "name": campaign[2]}
        message = {
            "type": kind,
            "userId": self.user_id,
            "messageId": f"syn-{self.seed}-{self.user_id}-{len(self.messages)}",
            "timestamp": _iso(at),
            "context": context,
            **fields,
        }
        self.messages.append(message)


def _session(
    maker: _Messages,
    rng: random.Random,
    start: datetime,
    campaign: tuple[str, str, str] | None,
    *,
    checkout: bool,
) -> datetime:
    """1-3 page views from ``start`` (the first carries the campaign); the last view's time."""
    at = start
    views = rng.randint(1, 2)
    for i in range(views):
        name, path = rng.choice(_PAGES)
        if name == "Product":
            path = f"/product/{rng.randint(1, 500)}"
        query = f"?utm_source={campaign[0]}&utm_medium={campaign[1]}&utm_campaign={campaign[2]}" if campaign and i == 0 else ""
        maker.add("page", at, campaign=campaign if i == 0 else None, name=name,
                  properties={"path": path, "url": f"{SITE}{path}{query}", "title": f"{name} | Example Shop"})
        at += timedelta(seconds=rng.randint(20, 300))
    if checkout:
        maker.add("page", at, name="Checkout",
                  properties={"path": "/checkout", "url": f"{SITE}/checkout", "title": "Checkout | Example Shop"})
    return at


def _order(maker: _Messages, rng: random.Random, at: datetime, number: int) -> None:
    lines: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 3)):
        product = rng.randint(1, 500)
        lines.append({
            "product_id": f"P{product:05d}",
            "name": f"Synthetic product {product}",
            "category": _CATEGORIES[product % len(_CATEGORIES)],
            "price": round(rng.uniform(2, 80), 2),
            "quantity": rng.randint(1, 2),
        })
    revenue = round(sum(p["price"] * p["quantity"] for p in lines), 2)
    order_id = f"{maker.user_id}-order-{number}"
    maker.add("track", at, event="Order Completed", properties={
        "order_id": order_id, "revenue": revenue, "currency": "USD", "products": lines,
    })


def _later_channel(rng: random.Random) -> tuple[str, str, str] | None:
    return rng.choices([c for c, _ in _CHANNELS], [w for _, w in _CHANNELS])[0]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth), so the stream depends on :mod:`random` alone."""
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
