"""RFM scores, groups and the summary are DuckDB's on every backend: the checks the segments
parity test runs (tests/parity/test_segments_parity.py), sharing its Spark build."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from patron.segments.rfm import PROSPECTS, rfm_scores, rfm_summary
from patron.workspace import Workspace

AS_OF = datetime(2024, 7, 1, 6, 30)
START = datetime(2024, 1, 1, tzinfo=UTC)


def shop_messages(seed: int) -> list[dict[str, Any]]:
    """30 buyers with 1 to 9 orders at scattered times (ties in counts and in revenue on
    purpose), one whose orders carry no revenue, and 6 people who only signed up."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = []

    def add(message: dict[str, Any], hours: float) -> None:
        at = (START + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
        messages.append({"messageId": f"rfm-{len(messages)}", "timestamp": at, **message})

    for n in range(36):
        user = f"shopper-{n:02d}"
        add({"type": "identify", "userId": user, "traits": {"email": f"{user}@shop.example"}}, rng.uniform(0, 500))
        if n >= 30:
            continue
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 5, 9])):
            # Halves only: sums are exact, so engines that add in another order agree.
            properties = {} if n == 7 else {"revenue": rng.choice([10, 19.5, 25, 42.5, 80, 120.5])}
            add({"type": "track", "userId": user, "event": "Order Completed", "properties": properties},
                rng.uniform(0, 24 * 180))  # fmt: skip
    return messages


def rounded(value: Any) -> Any:
    """Means over floats may differ in the last bits between engines (summation order)."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def check_rfm(ws: Workspace, reference: Workspace, purchasers: int, prospects: int) -> None:
    """RFM scores, groups and the summary on ``ws`` are the reference's (built from the
    same messages, :func:`shop_messages` among them). Run by the segments parity test,
    which shares one Spark build with it (tests/parity/test_segments_parity.py)."""

    def scores(w: Workspace) -> list[dict[str, Any]]:
        rows = w.store.to_pyarrow(rfm_scores(w.store.table("profile_computed"), AS_OF)).to_pylist()
        return sorted(rows, key=lambda row: str(row["profile_id"]))

    expected = scores(reference)
    assert scores(ws) == expected
    assert sum(row["rfm_group"] == PROSPECTS for row in expected) == prospects
    assert any(row["monetary"] == 0.0 for row in expected), "the buyer without revenue"
    assert len({row["rfm_group"] for row in expected}) >= 5
    computed = ws.store.table("profile_computed")
    summary = rfm_summary(ws.store, computed, AS_OF)
    assert rounded(summary) == rounded(rfm_summary(reference.store, reference.store.table("profile_computed"), AS_OF))
    assert (summary["purchasers"], summary["prospects"]) == (purchasers, prospects)
