from __future__ import annotations

from collections import Counter
from datetime import date
from itertools import islice
from pathlib import Path

import pyarrow.csv as pacsv

from patron.demo.synthetic import (
    GENERATOR,
    CustomerHistory,
    customer_messages,
    email_campaigns,
    synthetic_events,
    synthetic_orders,
)
from patron.workspace import Workspace


def test_same_seed_same_messages_other_seed_other_messages() -> None:
    first = list(synthetic_events(30, seed=5))
    assert first == list(synthetic_events(30, seed=5))
    assert first != list(synthetic_events(30, seed=6))
    # a customer's life does not depend on how many others are generated
    assert list(islice(synthetic_events(1, seed=5), 3)) == first[:3]


def test_every_message_is_labelled_synthetic_and_has_a_unique_id() -> None:
    messages = list(synthetic_events(50, seed=1))
    assert all(m["context"]["synthetic"] is True and m["context"]["generator"] == GENERATOR for m in messages)
    assert len({m["messageId"] for m in messages}) == len(messages)
    kinds = Counter(m.get("event") or m["type"] for m in messages)
    assert kinds["identify"] == 50
    assert {"page", "Order Completed", "Email Delivered"} <= kinds.keys()
    assert all(m["traits"]["email"].endswith("@example.com") for m in messages if m["type"] == "identify")


def test_a_customers_life_fits_their_purchase_dates() -> None:
    purchases = (date(1997, 2, 3), date(1997, 6, 9))
    end = date(1997, 12, 31)
    messages = customer_messages(
        CustomerHistory("cdnow-42", purchases),
        seed=3,
        end=end,
        campaigns=email_campaigns(date(1997, 1, 1), end, every_days=60),
    )
    identify = messages[0]
    assert identify["type"] == "identify"
    assert identify["timestamp"][:10] <= "1997-02-03"
    page_days = {m["timestamp"][:10] for m in messages if m["type"] == "page"}
    assert {"1997-02-03", "1997-06-09"} <= page_days
    assert all(m["timestamp"][:10] <= "1997-12-31" for m in messages)
    assert not any(m.get("event") == "Order Completed" for m in messages)  # real orders come from CDNOW
    assert [m["timestamp"] for m in messages] == sorted(m["timestamp"] for m in messages)
    campaign_pages = [m for m in messages if "campaign" in m["context"]]
    assert all(set(m["context"]["campaign"]) == {"source", "medium", "name"} for m in campaign_pages)
    for survey in (m for m in messages if m.get("event") == "Survey Response Submitted"):
        assert 0 <= survey["properties"]["score"] <= 10


def test_synthetic_orders_have_the_size_asked_and_import_as_orders(tmp_path: Path, workspace: Workspace) -> None:
    table = synthetic_orders(5_000, seed=2)
    assert table.num_rows == 5_000
    assert table.equals(synthetic_orders(5_000, seed=2))
    assert not table.equals(synthetic_orders(5_000, seed=3))
    path = tmp_path / "orders.csv"
    pacsv.write_csv(table, path)
    report = workspace.imports.orders(path)
    orders = len(set(table["order_id"].to_pylist()))
    assert (report.read, report.events, report.stored, report.rejected) == (5_000, orders, orders, 0)
