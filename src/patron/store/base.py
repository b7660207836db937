"""The small interface every store engine implements."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa


@dataclass(frozen=True)
class AppendResult:
    """What one committed append stored."""

    inserted: frozenset[tuple[str, str]]
    """``(source_id, message_id)`` of every event row that was new."""
    failed_stored: int
    """How many rejected messages were written to the failed-events table."""
    dropped: frozenset[tuple[str, str]] = frozenset()
    """``(source_id, message_id)`` of rows refused before storing: events of erased people."""


@dataclass(frozen=True)
class KeyRecord:
    """A stored API key; the key itself is never stored, only its hash."""

    name: str
    source_id: str
    scope: str
    key_hash: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Replace:
    """Write ``data`` as the whole of table ``name`` (a work table that lives only as
    long as the write when ``temporary``)."""

    name: str
    data: pa.Table | ir.Table
    temporary: bool = False


@dataclass(frozen=True)
class Append:
    """Add ``data`` to table ``name`` (created from ``data``'s columns on first use)."""

    name: str
    data: pa.Table | ir.Table


@dataclass(frozen=True)
class ReplaceRows:
    """Delete the rows of ``name`` whose ``key`` columns appear in ``delete`` (by default
    the keys of ``data``), then insert ``data``: how incremental stages rewrite only what
    changed."""

    name: str
    key: tuple[str, ...]
    data: pa.Table | ir.Table
    delete: pa.Table | ir.Table | None = None


@dataclass(frozen=True)
class DeleteRows:
    """Delete the rows of ``name`` whose ``key`` columns appear in ``keys``."""

    name: str
    key: tuple[str, ...]
    keys: pa.Table | ir.Table


@dataclass(frozen=True)
class Drop:
    """Drop table ``name`` if it exists (a work table used earlier in the same write)."""

    name: str


Change = Replace | Append | ReplaceRows | DeleteRows | Drop


class Store(Protocol):
    """What the layers above need from an engine."""

    path: Path
    graph_in_engine: bool
    """Whether a full identity resolve keeps the graph in the engine (a cluster, whose
    driver cannot hold it) rather than bringing it to Python (faster on one machine):
    identity/engine_resolve.py. Both give the same graph."""

    def append(self, events: pa.Table, failed: pa.Table | None = None) -> AppendResult:
        """Commit events and rejected messages in one transaction.

        Events whose ``(source_id, message_id)`` is already stored are skipped. When this
        returns, the rows are durable; when it raises, nothing of the call is stored.
        """
        ...

    def events(self) -> ir.Table:
        """The event log as an Ibis table."""
        ...

    def failed_events(self) -> ir.Table:
        """Rejected messages (with ``failed_id`` and ``status``) as an Ibis table."""
        ...

    def execute(self, expr: ir.Expr) -> Any:
        """Run an Ibis expression built on this store's tables."""
        ...

    def to_pyarrow(self, expr: ir.Table) -> pa.Table:
        """Run an Ibis table expression into Arrow."""
        ...

    def mark_replayed(self, failed_ids: list[int], events: pa.Table) -> AppendResult:
        """Append replayed events and mark their failed rows replayed, atomically."""
        ...

    def apply_erasure(
        self, tombstones: pa.Table, event_keys: pa.Table, failed_ids: list[int], identifiers: pa.Table, receipt: pa.Table
    ) -> None:
        """Erase a person in one transaction: write tombstones and the receipt, delete
        their events, failed messages and split records."""
        ...

    def replace_tables(self, tables: dict[str, pa.Table]) -> None:
        """Replace derived tables in one transaction."""
        ...

    def materialize(self, tables: dict[str, ir.Table]) -> None:
        """Compute Ibis expressions in the engine into derived tables, in one transaction."""
        ...

    def append_table(self, name: str, table: pa.Table) -> None:
        """Append rows to a table of records people made, creating it on first use."""
        ...

    def export_events(
        self, folder: Path, *, after_seq: int | None = None, seq_offset: int | None = None, prefix: str = "part"
    ) -> dict[str, Any]:
        """Write the event log (the events after ``after_seq`` when given) into
        ``folder`` as the lake's Parquet files partitioned by day (store/lake.py), named
        ``{prefix}-N.parquet``, from one snapshot. With ``seq_offset``, the files' ``seq``
        is renumbered ``seq_offset + 1, + 2, ...`` in the log's order (the lake's own
        numbering when several stores feed it). Returns ``events``, ``days``,
        ``first_day``, ``last_day``, ``max_seq`` (in the files) and ``source_max_seq``
        (the last of this store's numbers written)."""
        ...

    def json_values(self, table: ir.Table, column: str, paths: dict[str, str]) -> ir.Table:
        """``table`` with one more string column per ``paths`` item (name -> dotted path
        into the JSON text in ``column``), every path read in one parse of each row."""
        ...

    def write(self, changes: list[Change], meta: dict[str, str] | None = None) -> None:
        """Apply changes to derived tables (Arrow tables or Ibis expressions computed in
        the engine) and meta values, all in one transaction."""
        ...

    def table(self, name: str) -> ir.Table:
        """A derived table by name, as an Ibis table."""
        ...

    def has_table(self, name: str) -> bool: ...

    def update_failure(self, failed_id: int, field: str | None, reason: str) -> None:
        """Record a new rejection reason for a failed message that still fails."""
        ...

    def add_key(self, record: KeyRecord) -> None: ...

    def find_key(self, key_hash: str) -> KeyRecord | None: ...

    def list_keys(self) -> list[KeyRecord]: ...

    def revoke_key(self, name: str, at: datetime) -> bool: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def checkpoint(self) -> None: ...

    def close(self) -> None: ...

    def splink_api(self) -> AbstractContextManager[Any]:
        """Splink's database API on this store's engine (needs ``patron[match]``).

        Used as ``with store.splink_api() as api:``; Splink's working tables are kept
        apart from the store's and dropped when the block ends.
        """
        ...
