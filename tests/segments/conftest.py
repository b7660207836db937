"""A small shop whose answers are known: eight customers with traits, views, orders and
emails, evaluated on a clock the tests move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from patron.config import Settings
from patron.workspace import Workspace
from tests.identity.test_graph import send

#: The evaluation clock of the tests: "today" is 2024-06-30.
NOW = datetime(2024, 6, 30, 12, 0, 0)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def identify(user: str, traits: dict[str, Any], day: str = "2024-01-01") -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": traits, "messageId": f"id-{user}-{day}",
            "timestamp": f"{day}T00:00:00Z"}  # fmt: skip


def track(user: str, event: str, when: str, message_id: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": event, "messageId": message_id,
            "properties": properties, "timestamp": when if "T" in when else f"{when}T12:00:00Z"}  # fmt: skip


def shop_messages() -> list[dict[str, Any]]:
    """Customers u1..u8; what each is for is said beside them."""
    m: list[dict[str, Any]] = [
        # u1: US, 34, vip, recent shoe viewer (3 views in the last week), orders often.
        identify("u1", {"email": "u1@shop.com", "country": "US", "age": 34, "tags": ["vip", "newsletter"],
                        "birthday": "1990-07-03", "address": {"city": "Boston"}, "plan": "pro", "beta": True}),
        # u2: GB, 51, no tags, birthday 1 January (the year-end case), one old order.
        identify("u2", {"email": "u2@shop.com", "country": "GB", "age": 51, "birthday": "1973-01-01",
                        "address": {"city": "Leeds"}, "plan": "free", "beta": False}),
        # u3: no country, age as text (a bad value), lapsed buyer.
        identify("u3", {"email": "u3@shop.com", "age": "unknown", "tags": [], "plan": "free"}),
        # u4: US, 22, only views, never ordered.
        identify("u4", {"email": "u4@example.com", "country": "US", "age": 22, "tags": ["student"]}),
        # u5: FR, 40, restarted buying after a long gap.
        identify("u5", {"email": "u5@shop.com", "country": "FR", "age": 40, "birthday": "1984-02-29"}),
        # u6: DE, funnel: added then ordered within an hour.
        identify("u6", {"email": "u6@shop.com", "country": "DE", "age": 29}),
        # u7: DE, funnel too slow (ordered two days after adding).
        identify("u7", {"email": "u7@shop.com", "country": "DE", "age": 31}),
        # u8: first order ever 10 days ago.
        identify("u8", {"email": "u8@shop.com", "country": "US", "age": 45}),
    ]
    m += [track("u1", "Product Viewed", f"2024-06-{d}", f"v1-{d}", category="shoes", color="red") for d in (25, 27, 29)]
    m += [track("u1", "Product Viewed", "2024-05-01", "v1-old", category="shoes", color="blue")]
    m += [track("u1", "Order Completed", f"2024-{mo:02d}-15", f"o1-{mo}", revenue=100.0 + mo) for mo in range(1, 7)]
    m += [track("u2", "Order Completed", "2023-01-10", "o2-1", revenue=20.0)]
    m += [track("u3", "Order Completed", d, f"o3-{d}", revenue=60.0) for d in ("2023-10-01", "2023-11-01", "2024-01-05")]
    m += [track("u4", "Product Viewed", "2024-06-28", "v4-1", category="shoes", color="red"),
          track("u4", "Product Viewed", "2024-06-20", "v4-2", category="bags")]  # fmt: skip
    m += [track("u5", "Order Completed", d, f"o5-{d}", revenue=30.0) for d in ("2023-01-01", "2023-02-01", "2024-06-20")]
    m += [track("u6", "Product Added", "2024-06-10T10:00:00Z", "a6"), track("u6", "Order Completed", "2024-06-10T10:40:00Z", "o6", revenue=10.0)]
    m += [track("u7", "Product Added", "2024-06-10T10:00:00Z", "a7"), track("u7", "Order Completed", "2024-06-12T10:00:00Z", "o7", revenue=10.0)]
    m += [track("u8", "Order Completed", "2024-06-20", "o8", revenue=80.0)]
    return m


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def open_shop(path: Path, clock: Clock) -> Workspace:
    ws = Workspace(Settings(store=path))
    send(ws, *shop_messages())
    ws.profiles.build()
    ws.segments.clock = clock
    return ws


@pytest.fixture
def shop(tmp_path: Path, clock: Clock) -> Iterator[Workspace]:
    with open_shop(tmp_path / "shop.duckdb", clock) as ws:
        yield ws


@pytest.fixture(scope="module")
def shop_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The shop for tests that only read (built once per module)."""
    with open_shop(tmp_path_factory.mktemp("shop") / "shop.duckdb", Clock(NOW)) as ws:
        yield ws


def user_ids(ws: Workspace, profile_ids: list[str]) -> set[str]:
    """The user ids of profiles (u1, u2, ...), to compare with what the tests expect."""
    from patron.identity.service import IDENTIFIERS

    table = ws.store.table(IDENTIFIERS)
    rows = ws.store.to_pyarrow(table.filter(table.identifier_type == "user_id")).to_pylist()
    owner = {r["profile_id"]: r["identifier_value"] for r in rows}
    return {owner.get(p, p) for p in profile_ids}  # a profile with no user id: its own id


def matching(ws: Workspace, query: str, **kw: Any) -> set[str]:
    """The user ids a query matches now."""
    preview = ws.segments.preview(query, sample=1000, **kw)
    assert preview.count == len(preview.sample)
    return user_ids(ws, [r["profile_id"] for r in preview.sample])
