"""Helpers for importer tests: read back what a workspace stored."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from patron.workspace import Workspace


class StoredEvents:
    """What the store holds, as plain rows (``message`` is the decoded raw JSON)."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def rows(self, source_id: str | None = None) -> list[dict[str, Any]]:
        events = self.ws.store.events()
        if source_id is not None:
            events = events.filter(events.source_id == source_id)
        rows = self.ws.store.to_pyarrow(events.order_by("seq")).to_pylist()
        for row in rows:
            row["message"] = orjson.loads(row["raw"])
        return rows

    def failed(self) -> list[dict[str, Any]]:
        table = self.ws.store.failed_events()
        return self.ws.store.to_pyarrow(table.order_by("failed_id")).to_pylist()


@pytest.fixture
def stored(workspace: Workspace) -> StoredEvents:
    return StoredEvents(workspace)
