"""The only package that knows the database engine.

Everything above ``store/`` gets Ibis tables for analytical reads and calls the small
:class:`~patron.store.base.Store` interface for writes.
"""

from __future__ import annotations

from pathlib import Path

from patron.store.base import AppendResult, Store
from patron.store.exceptions import StoreError, StoreLocked, StoreUnavailable

__all__ = ["AppendResult", "Store", "StoreError", "StoreLocked", "StoreUnavailable", "open_store"]


def open_store(
    path: Path, *, read_only: bool = False, checkpoint_threshold: str | None = None, memory_limit: str | None = None
) -> Store:
    """Open (creating if needed) the embedded store at ``path``."""
    from patron.store.duckdb import DEFAULT_CHECKPOINT_THRESHOLD, DuckDBStore

    return DuckDBStore.open(
        path,
        read_only=read_only,
        checkpoint_threshold=checkpoint_threshold or DEFAULT_CHECKPOINT_THRESHOLD,
        memory_limit=memory_limit,
    )
