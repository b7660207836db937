"""The demo data: the real CDNOW purchase log plus labelled synthetic customer life.

* :mod:`.cdnow` -- the bundled real data set (see ``data/PROVENANCE.md``)
* :mod:`.synthetic` -- the deterministic generator, for the demo, tests and benchmarks
* :mod:`.loader` -- ``patron demo``: loads both into a store once
"""

from __future__ import annotations

from patron.demo.loader import DemoLoader, DemoSummary
from patron.demo.synthetic import (
    CustomerHistory,
    customer_messages,
    synthetic_events,
    synthetic_orders,
)

__all__ = [
    "CustomerHistory",
    "DemoLoader",
    "DemoSummary",
    "customer_messages",
    "synthetic_events",
    "synthetic_orders",
]
