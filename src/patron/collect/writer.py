"""The durable writer: one thread, one transaction per group of waiting requests.

Request handlers hand their validated rows to :meth:`DurableWriter.submit` and wait. The
writer thread takes everything queued since its last commit, writes it in one
transaction (group commit), and only then answers every request in the group. A request
is therefore answered 200 only once its rows are committed, and a request whose group
fails is answered with the store's error and nothing of it is acknowledged.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import pyarrow as pa

from patron.collect.exceptions import WriterClosed
from patron.collect.spec import EventRow, rows_to_table
from patron.store.base import Store
from patron.store.exceptions import StoreUnavailable


@dataclass(frozen=True)
class WriteResult:
    """How a submitted request's messages ended up."""

    accepted: int
    """Messages stored by this request."""
    duplicates: int
    """Messages already stored (same ``messageId`` from the same source), acknowledged again."""
    erased: int = 0
    """Messages of people erased on request: acknowledged, never stored."""


@dataclass
class _Pending:
    rows: list[EventRow]
    failed: pa.Table | None
    future: Future[WriteResult] = field(default_factory=Future)


@dataclass
class WriterStats:
    groups: int = 0
    rows: int = 0
    last_group_size: int = 0
    last_commit_ms: float = 0.0
    last_error: str | None = None


_STOP = object()


class DurableWriter:
    """Commits submitted rows in groups on a single thread.

    Args:
        store: where rows are committed.
        max_group_rows: most rows per transaction; more waiting rows go in the next one.
    """

    def __init__(self, store: Store, *, max_group_rows: int = 20_000) -> None:
        self.store = store
        self.max_group_rows = max_group_rows
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="patron-writer", daemon=True)
        self._closed = False

    def start(self) -> None:
        # A store that could only be opened read-only refuses every write: say so from the
        # start (``/health`` reports ``last_error``), not only after the first refused request.
        reason = getattr(self.store, "read_only_reason", None)
        if reason:
            self.stats.last_error = str(StoreUnavailable(self.store.path, reason))
        self._thread.start()

    def submit(self, rows: list[EventRow], failed: pa.Table | None = None) -> Future[WriteResult]:
        """Queue rows (and rejected messages) for the next commit; the future resolves after it."""
        if self._closed:
            raise WriterClosed()
        pending = _Pending(rows, failed)
        self._queue.put(pending)
        return pending.future

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if not isinstance(first, _Pending):
                break
            group = [first]
            size = len(first.rows)
            while size < self.max_group_rows:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if not isinstance(item, _Pending):
                    stopping = True
                    break
                group.append(item)
                size += len(item.rows)
            self._commit(group)

    def _commit(self, group: list[_Pending]) -> None:
        # Within a group the first occurrence of a (source, messageId) is the one that may
        # be stored; later copies in the same group are duplicates of it.
        seen: set[tuple[str, str]] = set()
        unique: list[EventRow] = []
        firsts: list[list[tuple[str, str]]] = []
        for pending in group:
            mine: list[tuple[str, str]] = []
            for row in pending.rows:
                key = (row[0], row[1])
                if key not in seen:
                    seen.add(key)
                    unique.append(row)
                    mine.append(key)
            firsts.append(mine)
        failed = [p.failed for p in group if p.failed is not None and p.failed.num_rows]
        started = time.perf_counter()
        try:
            result = self.store.append(
                rows_to_table(unique), pa.concat_tables(failed) if failed else None
            )
        except Exception as error:  # every waiting request must hear why
            self.stats.last_error = str(error)
            for pending in group:
                pending.future.set_exception(error)
            return
        self.stats.groups += 1
        self.stats.rows += len(unique)
        self.stats.last_group_size = len(unique)
        self.stats.last_commit_ms = (time.perf_counter() - started) * 1000
        self.stats.last_error = None
        for pending, mine in zip(group, firsts, strict=True):
            accepted = sum(1 for key in mine if key in result.inserted)
            erased = sum(1 for key in mine if key in result.dropped) if result.dropped else 0
            pending.future.set_result(WriteResult(accepted, len(pending.rows) - accepted - erased, erased))
