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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from patron import __version__
from patron.collect.importers import columns as cols
from patron.collect.importers.eventtable import event_table
from patron.collect.importers.files import read_table
from patron.collect.importers.order_fields import (
    DEFAULT_SOURCE,
    MAX_ORDER_ID,
    ORDER_EVENT,
    ORDER_FIELDS,
    PRODUCT_KEYS,
    OrderOptions,
    resolve_mapping,
)
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

__all__ = ["DEFAULT_SOURCE", "ORDER_EVENT", "ORDER_FIELDS", "OrderOptions", "import_orders", "resolve_mapping"]

_JSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


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
    """Converts the mapped columns once (into Arrow arrays), then makes events chunk by chunk.

    Columns stay in Arrow until a chunk needs them, so Python objects exist for one chunk
    of orders at a time rather than for the whole file.
    """

    def __init__(self, table: pa.Table, mapping: dict[str, str], options: OrderOptions) -> None:
        self.table = table
        self.options = options
        self.errors: dict[int, tuple[str, str]] = {}
        #: Order-level columns by field, and product columns by their key in ``products[]``.
        self.columns: dict[str, pa.Array] = {}
        self.products: dict[str, pa.Array] = {}
        for key in ORDER_FIELDS:
            if key not in mapping:
                continue
            column = table[mapping[key]]
            if key == "timestamp":
                times = cols.timestamps(column, "timestamp", options.date_format)
                self._note("timestamp", times.errors)
                array = times.array
            elif key in ("revenue", "total", "price", "quantity"):
                parsed = cols.number(column, key)
                self._note(key, parsed.errors)
                array = pa.array(parsed.values, pa.float64())
            else:
                array = cols.text_array(column)
            if key in PRODUCT_KEYS:
                self.products[PRODUCT_KEYS[key]] = array
            else:
                self.columns[key] = array
        self._check_rows()

    def _note(self, field_name: str, errors: dict[int, str]) -> None:
        for row, reason in errors.items():
            self.errors.setdefault(row, (field_name, reason))

    def _check_rows(self) -> None:
        """Row rules the columns alone cannot enforce: required cells, far-future times."""
        ids = self.columns["order_id"]
        too_long = pc.fill_null(pc.greater(pc.utf8_length(ids), MAX_ORDER_ID), False)
        for row in pc.indices_nonzero(pc.or_(pc.is_null(ids), too_long)).to_pylist():
            reason = "order_id is empty" if not ids[row].is_valid else (
                f"order_id is over {MAX_ORDER_ID} characters"
            )
            self.errors.setdefault(row, ("order_id", reason))
        times = self.columns["timestamp"]
        limit = pa.scalar(utc_now() + self.options.max_future, pa.timestamp("us"))
        future = pc.fill_null(pc.greater(times, limit), False)
        for row in pc.indices_nonzero(pc.or_(pc.is_null(times), future)).to_pylist():
            value = times[row].as_py()
            reason = "timestamp is empty" if value is None else (
                f"timestamp {value.isoformat()} lies in the future (limit PATRON_MAX_FUTURE_SECONDS)"
            )
            self.errors.setdefault(row, ("timestamp", reason))
        identities = [self.columns[k] for k in ("customer_id", "email", "anonymous_id") if k in self.columns]
        nobody = pc.is_null(identities[0])
        for column in identities[1:]:
            nobody = pc.and_(nobody, pc.is_null(column))
        for row in pc.indices_nonzero(nobody).to_pylist():
            self.errors.setdefault(row, ("customer_id", "no customer_id, email or anonymous_id"))

    def _groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows grouped into orders: order ``g`` is ``rows[starts[g]:starts[g + 1]]``.

        Orders keep the order of their first row; without product columns every row
        is an order of its own.
        """
        n = self.table.num_rows
        if not self.products:
            return np.arange(n), np.arange(n + 1)
        encoded = pc.dictionary_encode(self.columns["order_id"])  # codes in first-seen order
        nulls = pc.is_null(encoded.indices).to_numpy(zero_copy_only=False)
        codes = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        if nulls.any():  # rejected anyway: each its own group, never merged with others
            codes[nulls] = len(encoded.dictionary) + np.arange(int(nulls.sum()))
        starts = np.concatenate(([0], np.cumsum(np.bincount(codes))))
        if n < 2 or bool((np.diff(codes) >= 0).all()):  # the usual export: lines adjacent
            return np.arange(n), starts
        return np.argsort(codes, kind="stable"), starts

    def _lines_revenue(self, rows: np.ndarray, starts: np.ndarray) -> np.ndarray | None:
        """Per order, the sum of price x quantity (1 when empty) of its priced lines; NaN if none."""
        if "price" not in self.products or not len(rows):
            return None
        price = self.products["price"].to_numpy(zero_copy_only=False)
        quantity = np.ones_like(price)
        if "quantity" in self.products:
            given = self.products["quantity"].to_numpy(zero_copy_only=False)
            quantity = np.where(np.isnan(given), 1.0, given)
        line = (price * quantity)[rows]
        priced = ~np.isnan(line)
        sums = np.add.reduceat(np.where(priced, line, 0.0), starts[:-1])
        counted = np.add.reduceat(priced.astype(np.int64), starts[:-1])
        # Rounded so float noise (0.1 + 0.2) does not reach the stored event.
        return np.where(counted > 0, np.round(sums, 6), np.nan)

    def store(self, store: Store, name: str, progress: Progress) -> ImportReport:
        report = ImportReport("orders", name, self.options.source_id, unit="rows")
        report.read = self.table.num_rows
        received_at = utc_now()
        writer = ChunkWriter(store, report, received_at)
        progress.start(f"importing {Path(name).name}", report.read)
        rows, starts = self._groups()
        lines_revenue = self._lines_revenue(rows, starts)
        n_orders = len(starts) - 1
        with _no_garbage_collection():
            for first in range(0, n_orders, CHUNK_SIZE):
                last = min(first + CHUNK_SIZE, n_orders)
                chunk_rows = rows[starts[first] : starts[last]]
                bounds = (starts[first : last + 1] - starts[first]).tolist()
                revenue = None if lines_revenue is None else lines_revenue[first:last].tolist()
                events, rejected = self._chunk(chunk_rows, bounds, revenue, received_at)
                writer.write(events, self._rejections(rejected))
                progress.advance(len(chunk_rows))
        return report

    def _chunk(
        self,
        chunk_rows: np.ndarray,
        bounds: list[int],
        lines_revenue: list[float] | None,
        received_at: Any,
    ) -> tuple[pa.Table, list[tuple[int, str, str]]]:
        """Events of the orders whose rows are ``chunk_rows``, split at ``bounds``."""
        options = self.options
        take = pa.array(chunk_rows, pa.int64())
        rows = chunk_rows.tolist()
        local = {key: array.take(take).to_pylist() for key, array in self.columns.items()}
        order_ids = local["order_id"]
        times = local["timestamp"]
        none = [None] * len(rows)
        customer_ids = local.get("customer_id", none)
        emails = local.get("email", none)
        anonymous_ids_in = local.get("anonymous_id", none)
        currencies = local.get("currency", none)
        revenues = local.get("revenue", none)
        totals = local.get("total", none)
        products = [(key, array.take(take).to_pylist()) for key, array in self.products.items()]
        if "quantity" in self.products:
            products = [(k, [_whole(q) for q in v] if k == "quantity" else v) for k, v in products]
        library = {"name": "patron-import", "version": __version__}
        errors = self.errors
        message_ids: list[str] = []
        user_ids: list[str | None] = []
        anonymous_ids: list[str | None] = []
        first_rows: list[int] = []
        raws: list[str] = []
        rejected: list[tuple[int, str, str]] = []
        for group in range(len(bounds) - 1):
            start, end = bounds[group], bounds[group + 1]
            if errors:
                bad = next((errors[rows[i]] for i in range(start, end) if rows[i] in errors), None)
                if bad is not None:
                    rejected.extend(self._reject_order(rows[start:end], bad))
                    continue
            order_id = order_ids[start]
            properties: dict[str, Any] = {"order_id": order_id}
            revenue = revenues[start]
            if revenue is None and lines_revenue is not None and lines_revenue[group] == lines_revenue[group]:
                revenue = lines_revenue[group]  # (NaN != NaN: an order without priced lines)
            if revenue is not None:
                properties["revenue"] = revenue
            if totals[start] is not None:
                properties["total"] = totals[start]
            properties["currency"] = currencies[start] or options.currency
            if products:
                properties["products"] = [
                    {key: values[i] for key, values in products if values[i] is not None}
                    for i in range(start, end)
                ]
            message_id = f"order-{order_id}"
            message: dict[str, Any] = {
                "type": "track",
                "event": ORDER_EVENT,
                "messageId": message_id,
                "timestamp": times[start],
                "properties": properties,
            }
            user_id, anonymous_id, email = customer_ids[start], anonymous_ids_in[start], emails[start]
            if user_id is None and anonymous_id is None:
                # Segment needs userId or anonymousId; an email-only export gets a stable
                # anonymous id derived from the email, which identity resolution can link.
                anonymous_id = f"email:{email.lower()}"
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
                rejected.extend(self._reject_order(rows[start:end], ("", reason)))
                continue
            message_ids.append(message_id)
            user_ids.append(user_id)
            anonymous_ids.append(anonymous_id)
            first_rows.append(rows[start])
            raws.append(raw.decode())
        events = event_table(
            source_id=options.source_id,
            received_at=received_at,
            kind="track",
            event=ORDER_EVENT,
            message_ids=message_ids,
            user_ids=user_ids,
            anonymous_ids=anonymous_ids,
            timestamps=self.columns["timestamp"].take(pa.array(first_rows, pa.int64())),
            raws=raws,
        )
        return events, rejected

    def _reject_order(self, rows: list[int], bad: tuple[str, str]) -> list[tuple[int, str, str]]:
        """Every row of a rejected order, each with its own reason or the order's."""
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

