from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from patron.collect.importers import ImportFileError, MissingColumn
from patron.collect.spec import MessageValidator, Rejection
from patron.store.tables import EVENT_COLUMNS
from patron.workspace import Workspace

from .conftest import StoredEvents

LINES = """OrderNo,CustID,Mail,Placed,SKU,Title,UnitPrice,Qty,Cat
A-1,c1,ann@example.com,20240501,S1,Blue Train,10.5,2,Jazz
A-2,c2,,20240502,S2,Kind of Blue,7,1,Jazz
A-1,c1,ann@example.com,20240501,S3,Abbey Road,4,1,Rock
"""
MAP = {
    "order_id": "OrderNo",
    "customer_id": "CustID",
    "email": "Mail",
    "timestamp": "Placed",
    "sku": "SKU",
    "product_name": "Title",
    "price": "UnitPrice",
    "quantity": "Qty",
    "category": "Cat",
}


def _csv(tmp_path: Path, text: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_lines_of_an_order_become_one_event_with_products(
    tmp_path: Path, workspace: Workspace, stored: StoredEvents
) -> None:
    report = workspace.imports.orders(_csv(tmp_path, LINES), mapping=MAP, date_format="%Y%m%d")
    assert (report.read, report.events, report.stored, report.rejected) == (3, 2, 2, 0)
    rows = stored.rows()
    assert [(r["source_id"], r["type"], r["event"], r["message_id"], r["user_id"]) for r in rows] == [
        ("import:orders", "track", "Order Completed", "order-A-1", "c1"),
        ("import:orders", "track", "Order Completed", "order-A-2", "c2"),
    ]
    first = rows[0]["message"]
    assert first["properties"] == {
        "order_id": "A-1",
        "revenue": 25.0,
        "currency": "USD",
        "products": [
            {"sku": "S1", "name": "Blue Train", "price": 10.5, "quantity": 2, "category": "Jazz"},
            {"sku": "S3", "name": "Abbey Road", "price": 4.0, "quantity": 1, "category": "Rock"},
        ],
    }
    assert first["context"]["traits"] == {"email": "ann@example.com"}
    assert "traits" not in rows[1]["message"]["context"]
    assert rows[0]["timestamp"] == datetime(2024, 5, 1)


def test_built_rows_are_what_the_validator_makes_of_the_same_message(
    tmp_path: Path, workspace: Workspace, stored: StoredEvents
) -> None:
    """The fast path skips the validator; it must still produce the validator's rows."""
    workspace.imports.orders(_csv(tmp_path, LINES), mapping=MAP, date_format="%Y%m%d")
    validator = MessageValidator(max_message_bytes=32 * 1024, max_future=workspace.settings.max_future)
    for row in stored.rows():
        again = validator.check(row["message"], source_id=row["source_id"], received_at=row["received_at"])
        assert not isinstance(again, Rejection)
        assert again[:12] == tuple(row[c] for c in EVENT_COLUMNS[:12])


def test_reimporting_adds_nothing(tmp_path: Path, workspace: Workspace) -> None:
    path = _csv(tmp_path, LINES)
    workspace.imports.orders(path, mapping=MAP, date_format="%Y%m%d")
    again = workspace.imports.orders(path, mapping=MAP, date_format="%Y%m%d")
    assert (again.events, again.stored, again.duplicates) == (2, 0, 2)
    assert workspace.events.counts().total == 2


def test_default_mapping_and_order_level_revenue(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    text = (
        "order_id,customer_id,date,revenue,total,currency\n"
        "1,c1,2024-05-01T10:00:00+02:00,9.99,12.5,EUR\n"
        "2,c2,2024-05-02,5,,\n"
    )
    report = workspace.imports.orders(_csv(tmp_path, text), currency="GBP")
    assert report.stored == 2
    first, second = (r["message"] for r in stored.rows())
    assert first["properties"] == {"order_id": "1", "revenue": 9.99, "total": 12.5, "currency": "EUR"}
    assert first["timestamp"] == "2024-05-01T08:00:00Z"
    assert second["properties"] == {"order_id": "2", "revenue": 5.0, "currency": "GBP"}


def test_bad_rows_are_rejected_with_reasons_and_take_their_order_with_them(
    tmp_path: Path, workspace: Workspace, stored: StoredEvents
) -> None:
    text = (
        "order_id,customer_id,timestamp,product_id,price\n"
        "1,c1,2024-05-01,p1,3\n"
        "2,c2,not a date,p1,3\n"
        "3,c3,2024-05-03,p1,3\n"
        "3,c3,2024-05-03,p2,three\n"
        ",c4,2024-05-04,p1,1\n"
        "5,,2024-05-04,p1,1\n"
    )
    report = workspace.imports.orders(_csv(tmp_path, text))
    assert (report.stored, report.rejected) == (1, 5)
    assert [r["message_id"] for r in stored.rows()] == ["order-1"]
    failed = {f["message_index"]: (f["field"], f["reason"]) for f in stored.failed()}
    assert failed[2][0] == "timestamp" and "not a date" in failed[2][1]
    assert failed[3][0] == "price" and "another line of its order" in failed[3][1]
    assert failed[4] == ("price", "row 4: price 'three' is not a number")
    assert failed[5] == ("order_id", "row 5: order_id is empty")
    assert failed[6][0] == "customer_id"


def test_far_future_orders_are_rejected(tmp_path: Path, workspace: Workspace) -> None:
    report = workspace.imports.orders(_csv(tmp_path, "order_id,customer_id,timestamp\n1,c,2999-01-01\n"))
    assert (report.stored, report.rejected) == (0, 1)
    assert "future" in report.samples[0]["reason"]


def test_email_only_orders_get_an_anonymous_id(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    workspace.imports.orders(_csv(tmp_path, "order_id,email,timestamp\n1,Ann@Example.com,2024-01-01\n"))
    row = stored.rows()[0]
    assert (row["user_id"], row["anonymous_id"]) == (None, "email:ann@example.com")


def test_parquet_with_typed_columns(tmp_path: Path, workspace: Workspace, stored: StoredEvents) -> None:
    path = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "order_id": [1001, 1002],
                "customer_id": [7, 8],
                "timestamp": pa.array(
                    [datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)],
                    pa.timestamp("ms", tz="UTC"),
                ),
                "revenue": pa.array([10, 20], pa.int32()),
            }
        ),
        path,
    )
    report = workspace.imports.orders(path, source_id="shopify")
    assert report.stored == 2
    rows = stored.rows("shopify")
    assert [(r["message_id"], r["user_id"], r["timestamp"]) for r in rows] == [
        ("order-1001", "7", datetime(2024, 1, 1, 12)),
        ("order-1002", "8", datetime(2024, 1, 2)),
    ]
    assert rows[0]["message"]["properties"]["revenue"] == 10.0


def test_a_missing_mapped_column_lists_the_files_columns(tmp_path: Path, workspace: Workspace) -> None:
    with pytest.raises(MissingColumn) as caught:
        workspace.imports.orders(_csv(tmp_path, LINES), mapping={**MAP, "order_id": "OrderNumber"})
    message = str(caught.value)
    assert "no column 'OrderNumber' for order_id" in message
    assert "OrderNo, CustID, Mail, Placed, SKU, Title, UnitPrice, Qty, Cat" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "mapping", "reason"),
    [
        ("id,customer_id,timestamp\n1,c,2024-01-01\n", {}, "no column for order_id"),
        ("order_id,timestamp\n1,2024-01-01\n", {}, "no column for the customer"),
        ("order_id,customer_id,timestamp\n1,c,2024-01-01\n", {"colour": "x"}, "unknown field"),
        ("order_id,customer_id,timestamp\n", {}, "the file has no rows"),
    ],
)
def test_unusable_mappings_and_files(
    tmp_path: Path, workspace: Workspace, text: str, mapping: dict[str, str], reason: str
) -> None:
    with pytest.raises(ImportFileError, match=reason):
        workspace.imports.orders(_csv(tmp_path, text), mapping=mapping)


def test_without_product_columns_a_repeated_order_id_is_a_duplicate(tmp_path: Path, workspace: Workspace) -> None:
    text = "order_id,customer_id,timestamp,revenue\n1,c,2024-01-01,5\n1,c,2024-01-01,5\n2,c,2024-01-02,7\n"
    report = workspace.imports.orders(_csv(tmp_path, text))
    assert (report.read, report.events, report.stored, report.duplicates) == (3, 3, 2, 1)
    assert "read 3 rows into 3 orders; stored 2, duplicates 1" in report.summary()
