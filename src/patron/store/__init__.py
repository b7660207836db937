"""The only package that knows the database engine.

Everything above ``store/`` gets Ibis tables for analytical reads and calls the small
:class:`~patron.store.base.Store` interface for writes.
"""

from __future__ import annotations

from pathlib import Path

from patron.store.base import AppendResult, Store
from patron.store.exceptions import StoreError, StoreLocked, StoreUnavailable

__all__ = ["BACKENDS", "AppendResult", "Store", "StoreError", "StoreLocked", "StoreUnavailable", "open_store"]


BACKENDS = ("duckdb", "spark")


def open_store(
    path: Path,
    *,
    backend: str = "duckdb",
    read_only: bool = False,
    checkpoint_threshold: str | None = None,
    memory_limit: str | None = None,
    spark_master: str | None = None,
    spark_conf: dict[str, str] | None = None,
) -> Store:
    """Open the store at ``path``: the embedded DuckDB file (created if needed), or with
    ``backend="spark"`` the lake folder, computed by Spark (store/spark.py)."""
    if backend == "spark":
        from patron.store.spark import DEFAULT_MASTER, SparkStore

        return SparkStore.open(path, master=spark_master or DEFAULT_MASTER, conf=spark_conf)
    if backend != "duckdb":
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    from patron.store.duckdb import DEFAULT_CHECKPOINT_THRESHOLD, DuckDBStore

    return DuckDBStore.open(
        path,
        read_only=read_only,
        checkpoint_threshold=checkpoint_threshold or DEFAULT_CHECKPOINT_THRESHOLD,
        memory_limit=memory_limit,
    )
