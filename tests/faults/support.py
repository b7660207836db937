"""Helpers shared by the fault and SDK tests: what is in a store, and messages to send."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from patron.config import Settings
from patron.workspace import Workspace


def stored_ids(store: Path) -> Counter[str]:
    """How many rows the event log holds for each messageId (read with the server stopped)."""
    with Workspace(Settings(store=store)) as ws:
        events = ws.store.events()
        table = ws.store.to_pyarrow(events.group_by("message_id").agg(n=events.count()))
    return Counter(dict(zip(table["message_id"].to_pylist(), table["n"].to_pylist(), strict=True)))


def stored_rows(store: Path) -> list[dict[str, Any]]:
    """Every event row, in commit order."""
    with Workspace(Settings(store=store)) as ws:
        return ws.store.to_pyarrow(ws.store.events().order_by("seq")).to_pylist()


def failed_rows(store: Path) -> list[dict[str, Any]]:
    with Workspace(Settings(store=store)) as ws:
        return ws.events.failed(include_replayed=True)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def track(message_id: str, *, user: str = "u1", pad: int = 0) -> dict[str, Any]:
    """A valid track message; ``pad`` adds that many bytes of properties."""
    message: dict[str, Any] = {
        "type": "track",
        "messageId": message_id,
        "userId": user,
        "event": "Order Completed",
        "timestamp": now_iso(),
        "properties": {"order_id": message_id, "revenue": 12.5},
    }
    if pad:
        message["properties"]["note"] = "x" * pad
    return message


def batch_body(messages: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"batch": messages, "sentAt": now_iso()})


def new_ids(prefix: str, n: int) -> list[str]:
    run = uuid.uuid4().hex[:8]
    return [f"{prefix}-{run}-{i}" for i in range(n)]
