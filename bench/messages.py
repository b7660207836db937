"""Deterministic Segment-spec messages of about 1 KB, as the official SDKs send them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

_EVENTS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Signed In")
_PAGES = ("/", "/shop", "/shop/shoes", "/cart", "/checkout", "/account")


def track_message(run: str, n: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    """One track message (~1 KB serialised) with a ``messageId`` unique to ``run`` and ``n``."""
    ts = now - timedelta(milliseconds=rng.randint(0, 5000))
    user = rng.randint(1, 50_000)
    price = round(rng.uniform(5, 300), 2)
    return {
        "type": "track",
        "event": rng.choice(_EVENTS),
        "userId": f"user-{user}",
        "anonymousId": f"anon-{user:08d}-{rng.randint(0, 10**8):08d}",
        "messageId": f"bench-{run}-{n:010d}",
        "timestamp": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "properties": {
            "product_id": f"sku-{rng.randint(1, 5000):05d}",
            "sku": f"SKU-{rng.randint(1, 99999):05d}",
            "category": "Footwear",
            "name": "Trail runner, waterproof",
            "brand": "Northpeak",
            "variant": rng.choice(("red", "blue", "black")),
            "price": price,
            "quantity": rng.randint(1, 3),
            "currency": "USD",
            "value": price,
            "position": rng.randint(1, 40),
            "url": f"https://shop.example.com/products/sku-{rng.randint(1, 5000)}",
            "image_url": f"https://cdn.example.com/img/{rng.randint(1, 5000)}.jpg",
        },
        "context": {
            "library": {"name": "analytics-python", "version": "2.4.0"},
            "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "locale": "en-US",
            "userAgent": (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Version/17.5 Safari/605.1.15"
            ),
            "page": {
                "path": rng.choice(_PAGES),
                "referrer": "https://www.google.com/",
                "title": "Northpeak shop",
                "url": "https://shop.example.com" + rng.choice(_PAGES),
            },
            "campaign": {"name": "autumn-sale", "source": "newsletter", "medium": "email"},
        },
        "integrations": {},
    }


def batch_body(run: str, start: int, size: int, rng: random.Random, now: datetime | None = None) -> bytes:
    """A ``/v1/batch`` body of ``size`` messages numbered from ``start``."""
    now = now or datetime.now(UTC)
    messages = [track_message(run, start + i, rng, now) for i in range(size)]
    sent_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps({"batch": messages, "sentAt": sent_at})
