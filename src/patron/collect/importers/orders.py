"""``patron import orders``: order exports (CSV, Parquet) as ``Order Completed`` events.

Each order becomes one track event of the Segment e-commerce spec::

    {"type": "track", "event": "Order Completed", "userId": ..., "messageId": "order-<id>",
     "timestamp": ..., "properties": {"order_id", "revenue", "total", "currency",
     "products": [{"product_id", "sku", "name", "price", "quantity", "category"}]},
     "context": {"traits": {"email": ...}, "library": {...}}}

When product columns are mapped, rows sharing an ``order_id`` are the lines of one order
and become its ``products``; order-level fields come from the order's first row. The
message id depends only on the order id, so importing a file again (or an export that
overlaps an earlier one) stores each order once.

A million rows must import in well under 30 seconds on two cores, so columns are
converted with Arrow kernels and messages are built straight into event-log columns
(:mod:`patron.collect.importers.eventtable`) rather than through the per-message
validator, whose rules they follow by construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from patron import __version__
from patron.collect.importers import columns as cols
from patron.collect.importers.eventtable import event_table
from patron.collect.importers.exceptions import ImportFileError
from patron.collect.importers.files import read_table
from patron.collect.importers.mapping import check_columns
from patron.collect.importers.report import (
    CHUNK_SIZE,
    ChunkWriter,
    ImportReport,
    NoProgress,
    Progress,
)
from patron.collect.spec import Rejection
from patron.collect.timestamps import utc_now
from patron.store.base import Store

DEFAULT_SOURCE = "import:orders"
ORDER_EVENT = "Order Completed"

#: Fields a column can be mapped to, and what each means.
ORDER_FIELDS: dict[str, str] = {
    "order_id": "the order's id (required)",
    "customer_id": "your customer id, stored as userId",
    "email": "the customer's email, stored as context.traits.email",
    "anonymous_id": "an anonymous id, stored as anonymousId",
    "timestamp": "when the order was placed (required; the field 'date' is the same)",
    "revenue": "order revenue; default: the sum of price x quantity of its lines",
    "total": "order total",
    "currency": "ISO currency code per row; default --currency",
    "product_id": "line: product id",
    "sku": "line: SKU",
    "product_name": "line: product name",
    "price": "line: unit price",
    "quantity": "line: quantity",
    "category": "line: product category",
}
_ALIASES = {"date": "timestamp"}
#: Mapped to a product's key in ``products[]``.
_PRODUCT_KEYS = {
    "product_id": "product_id",
    "sku": "sku",
    "product_name": "name",
    "price": "price",
    "quantity": "quantity",
    "category": "category",
}
_JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
_MAX_ORDER_ID = 400  # leaves room for "order-" within the 512-character message id


@dataclass(frozen=True)
class OrderOptions:
    """How to read an order file.

    Attributes:
        source_id: the source the events are stored under (message ids are unique per source).
        mapping: field -> column; fields not named map to a column of the same name if present.
        currency: the currency of orders without a currency column.
        date_format: ``strptime`` format of the timestamp column, when not ISO-8601.
        max_future: a timestamp further past now than this is rejected, as for the API.
        max_message_bytes: an order whose event is larger is rejected, as for the API.
    """

    source_id: str = DEFAULT_SOURCE
    mapping: Mapping[str, str] = field(default_factory=dict)
    currency: str = "USD"
    date_format: str | None = None
    max_future: timedelta = timedelta(hours=24)
    max_message_bytes: int = 32 * 1024


def resolve_mapping(path: Path, columns: list[str], given: Mapping[str, str]) -> dict[str, str]:
    """The full field -> column mapping: explicit entries, then same-named columns.

    Raises:
        ImportFileError: an unknown field, or a required field without a column.
        MissingColumn: a mapped column the file lacks.
    """
    explicit: dict[str, str] = {}
    for name, column in given.items():
        key = _ALIASES.get(name, name)
        if key not in ORDER_FIELDS:
            raise ImportFileError(
                path, f"--map {name}=...: unknown field; fields are {', '.join(ORDER_FIELDS)}"
            )
        explicit[key] = column
    check_columns(path, explicit, columns, "see `patron import orders --help` for the fields")
    mapping = dict(explicit)
    for key in ORDER_FIELDS:
        if key not in mapping and key in columns:
            mapping[key] = key
    if "timestamp" not in mapping and "date" in columns:
        mapping["timestamp"] = "date"
    shown = ", ".join(columns)
    for key, hint in (("order_id", "order_id=OrderNo"), ("timestamp", "timestamp=OrderDate")):
        if key not in mapping:
            raise ImportFileError(
                path, f"no column for {key}: map one with --map {hint}; the file's columns are: {shown}"
            )
    if not {"customer_id", "email", "anonymous_id"} & mapping.keys():
        raise ImportFileError(
            path,
            "no column for the customer: map customer_id (or email or anonymous_id), "
            f"e.g. --map customer_id=CustomerID; the file's columns are: {shown}",
        )
    return mapping


def import_orders(
    store: Store, path: Path, options: OrderOptions, progress: Progress | None = None
) -> ImportReport:
    """Import an order file (CSV or Parquet); see the module docstring for the event.

    Raises:
        ImportFileError: the file cannot be read, or the mapping does not fit it.
    """
    table = read_table(path)
    mapping = resolve_mapping(path, table.column_names, options.mapping)
    return _OrderBuilder(table, mapping, options).store(store, str(path), progress or NoProgress())


class _OrderBuilder:
    """Converts the mapped columns once, then makes events chunk by chunk."""

    def __init__(self, table: pa.Table, mapping: dict[str, str], options: OrderOptions) -> None:
        self.table = table
        self.mapping = mapping
        self.options = options
        self.errors: dict[int, tuple[str, str]] = {}
        n = table.num_rows

        def text(key: str) -> list[str | None] | None:
            return cols.text(table[mapping[key]]) if key in mapping else None

        def number(key: str) -> list[float | None] | None:
            if key not in mapping:
                return None
            parsed = cols.number(table[mapping[key]], key)
            self._note(key, parsed.errors)
            return parsed.values

        self.order_ids: list[str | None] = text("order_id") or [None] * n
        self.customer_ids = text("customer_id")
        self.emails = text("email")
        self.anonymous_ids = text("anonymous_id")
        self.currencies = text("currency")
        times = cols.timestamps(table[mapping["timestamp"]], "timestamp", options.date_format)
        self._note("timestamp", times.errors)
        self.times = times.array
        self.revenue = number("revenue")
        self.total = number("total")
        self.products: list[tuple[str, list[Any]]] = []
        for key, product_key in _PRODUCT_KEYS.items():
            if key in ("price", "quantity"):
                values = number(key)
                if values is not None and key == "quantity":
                    values = [_whole(q) for q in values]
            else:
                values = text(key)
            if values is not None:
                self.products.append((product_key, values))
        self._check_rows(n)

    def _note(self, field_name: str, errors: dict[int, str]) -> None:
        for row, reason in errors.items():
            self.errors.setdefault(row, (field_name, reason))

    def _check_rows(self, n: int) -> None:
        """Row rules the columns alone cannot enforce: required cells, far-future times."""
        for row, order_id in enumerate(self.order_ids):
            if order_id is None:
                self.errors.setdefault(row, ("order_id", "order_id is empty"))
            elif len(order_id) > _MAX_ORDER_ID:
                self.errors.setdefault(row, ("order_id", f"order_id is over {_MAX_ORDER_ID} characters"))
        missing_time = pc.is_null(self.times)
        limit = pa.scalar(utc_now() + self.options.max_future, pa.timestamp("us"))
        future = pc.fill_null(pc.greater(self.times, limit), False)
        for row in pc.indices_nonzero(pc.or_(missing_time, future)).to_pylist():
            if row not in self.errors:
                reason = "timestamp is empty" if self.times[row].as_py() is None else (
                    f"timestamp {self.times[row].as_py().isoformat()} lies in the future "
                    "(limit PATRON_MAX_FUTURE_SECONDS)"
                )
                self.errors[row] = ("timestamp", reason)
        identities = [c for c in (self.customer_ids, self.emails, self.anonymous_ids) if c is not None]
        for row in range(n):
            if all(column[row] is None for column in identities) and row not in self.errors:
                self.errors[row] = ("customer_id", "no customer_id, email or anonymous_id")

    def _groups(self) -> list[list[int]]:
        """Rows of each order in first-seen order; without product columns, one per row."""
        if not self.products:
            return [[row] for row in range(len(self.order_ids))]
        index: dict[str | None, int] = {}
        groups: list[list[int]] = []
        for row, order_id in enumerate(self.order_ids):
            if order_id is None:  # rejected anyway; never merge unrelated rows
                groups.append([row])
                continue
            at = index.get(order_id)
            if at is None:
                index[order_id] = len(groups)
                groups.append([row])
            else:
                groups[at].append(row)
        return groups

    def store(self, store: Store, name: str, progress: Progress) -> ImportReport:
        report = ImportReport("orders", name, self.options.source_id, unit="rows")
        report.read = self.table.num_rows
        received_at = utc_now()
        writer = ChunkWriter(store, report, received_at)
        progress.start(f"importing {Path(name).name}", report.read)
        groups = self._groups()
        times = self.times.to_pylist()
        for start in range(0, len(groups), CHUNK_SIZE):
            chunk = groups[start : start + CHUNK_SIZE]
            events, rejected = self._chunk(chunk, times, received_at)
            writer.write(events, self._rejections(rejected))
            progress.advance(sum(len(g) for g in chunk))
        return report

    def _chunk(
        self, groups: list[list[int]], times: list[Any], received_at: Any
    ) -> tuple[pa.Table, list[tuple[int, str, str]]]:
        options = self.options
        library = {"name": "patron-import", "version": __version__}
        message_ids: list[str] = []
        user_ids: list[str | None] = []
        anonymous_ids: list[str | None] = []
        first_rows: list[int] = []
        raws: list[str] = []
        rejected: list[tuple[int, str, str]] = []
        for rows in groups:
            bad = next((self.errors[r] for r in rows if r in self.errors), None)
            if bad is not None:
                rejected.extend(self._reject_order(rows, bad))
                continue
            first = rows[0]
            order_id = self.order_ids[first]
            properties: dict[str, Any] = {"order_id": order_id}
            products = None
            if self.products:
                products = [
                    {key: values[r] for key, values in self.products if values[r] is not None}
                    for r in rows
                ]
            revenue = self.revenue[first] if self.revenue is not None else None
            if revenue is None and products is not None:
                revenue = _lines_revenue(products)
            if revenue is not None:
                properties["revenue"] = revenue
            if self.total is not None and self.total[first] is not None:
                properties["total"] = self.total[first]
            currency = self.currencies[first] if self.currencies is not None else None
            properties["currency"] = currency or options.currency
            if products is not None:
                properties["products"] = products
            message_id = f"order-{order_id}"
            message: dict[str, Any] = {
                "type": "track",
                "event": ORDER_EVENT,
                "messageId": message_id,
                "timestamp": times[first],
                "properties": properties,
            }
            user_id = self.customer_ids[first] if self.customer_ids is not None else None
            anonymous_id = self.anonymous_ids[first] if self.anonymous_ids is not None else None
            email = self.emails[first] if self.emails is not None else None
            if user_id is None and anonymous_id is None:
                # Segment needs userId or anonymousId; an email-only export gets a stable
                # anonymous id derived from the email, which identity resolution can link.
                anonymous_id = f"email:{email.lower()}"  # type: ignore[union-attr]
            if user_id is not None:
                message["userId"] = user_id
            if anonymous_id is not None:
                message["anonymousId"] = anonymous_id
            context: dict[str, Any] = {"library": library}
            if email is not None:
                context["traits"] = {"email": email}
            message["context"] = context
            raw = orjson.dumps(message, option=_JSON_OPTIONS)
            if len(raw) > options.max_message_bytes:
                reason = (
                    f"order {order_id} makes a {len(raw)}-byte event, over the limit of "
                    f"{options.max_message_bytes} bytes"
                )
                rejected.extend(self._reject_order(rows, ("", reason)))
                continue
            message_ids.append(message_id)
            user_ids.append(user_id)
            anonymous_ids.append(anonymous_id)
            first_rows.append(first)
            raws.append(raw.decode())
        events = event_table(
            source_id=options.source_id,
            received_at=received_at,
            kind="track",
            event=ORDER_EVENT,
            message_ids=message_ids,
            user_ids=user_ids,
            anonymous_ids=anonymous_ids,
            timestamps=self.times.take(pa.array(first_rows, pa.int64())),
            raws=raws,
        )
        return events, rejected

    def _reject_order(
        self, rows: list[int], bad: tuple[str, str]
    ) -> list[tuple[int, str, str]]:
        field_name, reason = bad
        out = []
        for row in rows:
            own = self.errors.get(row)
            if own is not None:
                out.append((row, own[0], f"row {row + 1}: {own[1]}"))
            else:
                out.append((row, field_name, f"row {row + 1}: another line of its order was rejected ({reason})"))
        return out

    def _rejections(self, rejected: list[tuple[int, str, str]]) -> list[Rejection]:
        if not rejected:
            return []
        cells = self.table.take(pa.array([r[0] for r in rejected], pa.int64())).to_pylist()
        return [
            Rejection(row + 1, field_name, reason, orjson.dumps(cell, default=str).decode())
            for (row, field_name, reason), cell in zip(rejected, cells, strict=True)
        ]


def _whole(value: float | None) -> float | int | None:
    if value is not None and value.is_integer():
        return int(value)
    return value


def _lines_revenue(products: list[dict[str, Any]]) -> float | None:
    priced = [p for p in products if "price" in p]
    if not priced:
        return None
    # Rounded so float noise (0.1 + 0.2) does not reach the stored event.
    return round(sum(p["price"] * p.get("quantity", 1) for p in priced), 6)
