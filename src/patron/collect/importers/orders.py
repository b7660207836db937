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

import gc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
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
    progress = progress or NoProgress()
    progress.start(f"reading {path.name}", None)
    table = read_table(path)
    mapping = resolve_mapping(path, table.column_names, options.mapping)
    return _OrderBuilder(table, mapping, options).store(store, str(path), progress)


class _OrderBuilder:
    """Converts the mapped columns once, then makes events chunk by chunk."""

    def __init__(self, table: pa.Table, mapping: dict[str, str], options: OrderOptions) -> None:
        self.table = table
        self.mapping = mapping
        self.options = options
        self.errors: dict[int, tuple[str, str]] = {}

        def text_array(key: str) -> pa.Array | None:
            return cols.text_array(table[mapping[key]]) if key in mapping else None

        def text(key: str) -> list[str | None] | None:
            array = text_array(key)
            return None if array is None else array.to_pylist()

        def number(key: str) -> list[float | None] | None:
            if key not in mapping:
                return None
            parsed = cols.number(table[mapping[key]], key)
            self._note(key, parsed.errors)
            return parsed.values

        self.order_id_array: pa.Array = cols.text_array(table[mapping["order_id"]])
        self.order_ids: list[str | None] = self.order_id_array.to_pylist()
        identities = [text_array(key) for key in ("customer_id", "email", "anonymous_id")]
        self.customer_ids, self.emails, self.anonymous_ids = (
            None if a is None else a.to_pylist() for a in identities
        )
        self.currencies = text("currency")
        times = cols.timestamps(table[mapping["timestamp"]], "timestamp", options.date_format)
        self._note("timestamp", times.errors)
        self.times = times.array
        self.revenue = number("revenue")
        self.total = number("total")
        self.products: list[tuple[str, list[Any]]] = []
        for key, product_key in _PRODUCT_KEYS.items():
            values: list[Any] | None
            if key in ("price", "quantity"):
                values = number(key)
                if values is not None and key == "quantity":
                    values = [_whole(q) for q in values]
            else:
                values = text(key)
            if values is not None:
                self.products.append((product_key, values))
        self._check_rows([a for a in identities if a is not None])

    def _note(self, field_name: str, errors: dict[int, str]) -> None:
        for row, reason in errors.items():
            self.errors.setdefault(row, (field_name, reason))

    def _check_rows(self, identities: list[pa.Array]) -> None:
        """Row rules the columns alone cannot enforce: required cells, far-future times."""
        ids = self.order_id_array
        too_long = pc.fill_null(pc.greater(pc.utf8_length(ids), _MAX_ORDER_ID), False)
        for row in pc.indices_nonzero(pc.or_(pc.is_null(ids), too_long)).to_pylist():
            reason = "order_id is empty" if self.order_ids[row] is None else (
                f"order_id is over {_MAX_ORDER_ID} characters"
            )
            self.errors.setdefault(row, ("order_id", reason))
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
        nobody = pc.is_null(identities[0])
        for column in identities[1:]:
            nobody = pc.and_(nobody, pc.is_null(column))
        for row in pc.indices_nonzero(nobody).to_pylist():
            self.errors.setdefault(row, ("customer_id", "no customer_id, email or anonymous_id"))

    def _groups(self) -> tuple[list[int], list[int]]:
        """Rows grouped into orders: order ``g`` is ``rows[starts[g]:starts[g + 1]]``.

        Orders keep the order of their first row; without product columns every row
        is an order of its own.
        """
        n = len(self.order_ids)
        if not self.products:
            return list(range(n)), list(range(n + 1))
        encoded = pc.dictionary_encode(self.order_id_array)  # codes in first-seen order
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        nulls = pc.is_null(encoded.indices).to_numpy(zero_copy_only=False)
        if nulls.any():  # rejected anyway: each its own group, never merged with others
            codes = np.where(nulls, 0, codes).astype(np.int64)
            codes[nulls] = len(encoded.dictionary) + np.arange(int(nulls.sum()))
        counts = np.bincount(codes)
        starts = np.concatenate(([0], np.cumsum(counts)))
        if n < 2 or bool((np.diff(codes) >= 0).all()):  # the usual export: lines adjacent
            rows = np.arange(n)
        else:
            rows = np.argsort(codes, kind="stable")
        return rows.tolist(), starts.tolist()

    def _lines_revenue(self, rows: list[int], starts: list[int]) -> list[float | None] | None:
        """Per order, the sum of price x quantity (quantity 1 when empty) of its priced lines."""
        values = dict(self.products)
        if "price" not in values:
            return None
        price = pa.array(values["price"], pa.float64()).to_numpy(zero_copy_only=False)
        quantity = np.ones_like(price)
        if "quantity" in values:
            given = pa.array(values["quantity"], pa.float64()).to_numpy(zero_copy_only=False)
            quantity = np.where(np.isnan(given), 1.0, given)
        line = (price * quantity)[rows]
        priced = ~np.isnan(line)
        sums = np.add.reduceat(np.where(priced, line, 0.0), starts[:-1])
        counted = np.add.reduceat(priced.astype(np.int64), starts[:-1])
        # Rounded so float noise (0.1 + 0.2) does not reach the stored event.
        return [round(float(s), 6) if c else None for s, c in zip(sums, counted, strict=True)]

    def store(self, store: Store, name: str, progress: Progress) -> ImportReport:
        report = ImportReport("orders", name, self.options.source_id, unit="rows")
        report.read = self.table.num_rows
        received_at = utc_now()
        writer = ChunkWriter(store, report, received_at)
        progress.start(f"importing {Path(name).name}", report.read)
        rows, starts = self._groups()
        self.lines_revenue = self._lines_revenue(rows, starts) if rows else None
        times = self.times.to_pylist()
        n_orders = len(starts) - 1
        with _no_garbage_collection():
            for first in range(0, n_orders, CHUNK_SIZE):
                last = min(first + CHUNK_SIZE, n_orders)
                groups = [(g, rows[starts[g] : starts[g + 1]]) for g in range(first, last)]
                events, rejected = self._chunk(groups, times, received_at)
                writer.write(events, self._rejections(rejected))
                progress.advance(starts[last] - starts[first])
        return report

    def _chunk(
        self, groups: list[tuple[int, list[int]]], times: list[Any], received_at: Any
    ) -> tuple[pa.Table, list[tuple[int, str, str]]]:
        options = self.options
        library = {"name": "patron-import", "version": __version__}
        message_ids: list[str] = []
        user_ids: list[str | None] = []
        anonymous_ids: list[str | None] = []
        first_rows: list[int] = []
        raws: list[str] = []
        rejected: list[tuple[int, str, str]] = []
        for group, rows in groups:
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
            if revenue is None and self.lines_revenue is not None:
                revenue = self.lines_revenue[group]
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


@contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """Pause the cycle collector while millions of small dicts and lists are made.

    They form no cycles, yet each collection walks all of them: with it running,
    building the events of a million rows took several seconds longer.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _whole(value: float | None) -> float | int | None:
    if value is not None and value.is_integer():
        return int(value)
    return value

