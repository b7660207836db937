"""The CDNOW purchase log (real data, bundled), as ``Order Completed`` messages.

See ``data/PROVENANCE.md`` for where the file comes from. Each line is one customer's
purchases on one day: customer id, date (``yyyymmdd``), number of CDs, dollar value.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

DATASET = "CDNOW (real)"
DATA_FILE = "CDNOW_master.txt.gz"


@dataclass(frozen=True, slots=True)
class Purchase:
    """One line of the log; ``row`` is its 1-based position after the header."""

    row: int
    customer: int
    day: date
    cds: int
    dollars: float

    @property
    def user_id(self) -> str:
        return f"cdnow-{self.customer}"


def read_purchases() -> list[Purchase]:
    """Every purchase of the bundled file, in file order (69,659 of them)."""
    data = resources.files("patron.demo").joinpath("data").joinpath(DATA_FILE).read_bytes()
    lines = gzip.decompress(data).decode("ascii").splitlines()
    purchases = []
    for row, line in enumerate(lines[1:], start=1):  # the first line is the header
        fields = line.split()
        if not fields:
            continue
        customer, day, cds, dollars = fields
        purchases.append(
            Purchase(row, int(customer), date(int(day[:4]), int(day[4:6]), int(day[6:])), int(cds), float(dollars))
        )
    return purchases


def purchase_messages(purchases: list[Purchase]) -> Iterator[dict[str, Any]]:
    """An ``Order Completed`` per purchase; ids follow the row, so a reload adds nothing.

    The log has dates, not times: each order is stamped at midnight UTC of its day.
    """
    for p in purchases:
        yield {
            "type": "track",
            "event": "Order Completed",
            "userId": p.user_id,
            "messageId": f"cdnow-{p.row}",
            "timestamp": f"{p.day.isoformat()}T00:00:00Z",
            "properties": {
                "order_id": f"cdnow-{p.row}",
                "revenue": p.dollars,
                "quantity": p.cds,
                "currency": "USD",
            },
            "context": {"dataset": DATASET, "synthetic": False},
        }
