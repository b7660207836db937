"""What an order file's columns mean: the fields, their default columns, the options.

``--map field=Column`` names the column of a field; a field not named is read from a
column of the same name when the file has one (``date`` stands in for ``timestamp``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from patron.collect.importers.exceptions import ImportFileError
from patron.collect.importers.mapping import check_columns

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
ALIASES = {"date": "timestamp"}
#: Mapped to a product's key in ``products[]``.
PRODUCT_KEYS = {
    "product_id": "product_id",
    "sku": "sku",
    "product_name": "name",
    "price": "price",
    "quantity": "quantity",
    "category": "category",
}
MAX_ORDER_ID = 400  # leaves room for "order-" within the 512-character message id


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
        key = ALIASES.get(name, name)
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
