"""Experiment: `patron serve` with three proposed changes, applied by patching at start.

This measures what the proposals in docs/benchmarks.md ("What limits the figures") would
buy before they are made in ``patron/store/duckdb.py`` (1, 2) and the server start-up
(3); delete it once they are. ``python -m bench --proposals`` runs the server through this
module.

1. ``SET checkpoint_threshold = '256MB'``. DuckDB checkpoints when its write-ahead log
   passes 16 MB (about 16,000 of these 1 KB events), and the writer waits for each.
   In isolation (one thread appending 4,000-row groups, 1,000,000 events) that gave
   18,000 rows/s at 16 MB and 47,000 at 1 GB; the cost of a checkpoint grows with the
   table. At 256 MB a checkpoint comes about every 250,000 events. Costs: up to 256 MB of log on disk, a longer replay after a crash
   (the graceful shutdown already checkpoints), more memory, and rarer but longer
   stalls (about 1.5 s). ``BENCH_CHECKPOINT=1GB`` tries another size.
2. A plain ``INSERT`` first, ``ON CONFLICT DO NOTHING RETURNING`` only when it fails.
   The conflict clause costs about 3.5 ms per statement on this machine whatever the row
   count, plus turning every returned key into Python. Retried (duplicate) messages are
   rare: the plain insert raises ``ConstraintException`` on one, the transaction rolls
   back, and the group is written again the current way. Nothing else changes: the same
   rows end up stored, the same duplicates are reported.
3. ``gc.collect(); gc.freeze()`` once the server has started. The process holds about
   160,000 long-lived objects after importing FastAPI, Ibis, pandas and pyarrow; every
   full (generation 2) collection walks them all, 80 ms on this machine, several times a
   minute under load, stalling every request in flight. Frozen, a full collection takes
   about 6 ms.
"""

from __future__ import annotations

import os

import duckdb

from patron.store import duckdb as store_module
from patron.store.base import AppendResult

_on_conflict = store_module._insert_events
_migrate = store_module.DuckDBStore._migrate
_append = store_module.DuckDBStore.append


def _plain_insert(cur: duckdb.DuckDBPyConnection, events):
    if not events.num_rows:
        return frozenset()
    cur.register("_patron_new_events", events)
    try:
        cur.execute(
            f"INSERT INTO events ({store_module._EVENT_COLS}) "
            f"SELECT {store_module._EVENT_COLS} FROM _patron_new_events"
        )
    finally:
        cur.unregister("_patron_new_events")
    return frozenset(zip(events.column(0).to_pylist(), events.column(1).to_pylist(), strict=True))


def _append_plain_first(self, events, failed=None) -> AppendResult:
    store_module._insert_events = _plain_insert  # only the writer thread appends
    try:
        return _append(self, events, failed)
    except duckdb.ConstraintException:  # a duplicate: roll back happened, do it the old way
        store_module._insert_events = _on_conflict
        return _append(self, events, failed)
    finally:
        store_module._insert_events = _on_conflict


def _migrate_with_threshold(self) -> None:
    _migrate(self)
    self._cursor().execute(f"SET checkpoint_threshold = '{os.environ.get('BENCH_CHECKPOINT', '256MB')}'")


def _freeze_after_startup() -> None:
    import gc

    import uvicorn

    startup = uvicorn.Server.startup

    async def frozen_startup(self, sockets=None):
        await startup(self, sockets=sockets)
        gc.collect()
        gc.freeze()

    setattr(uvicorn.Server, "startup", frozen_startup)  # noqa: B010 (a patch)


def main() -> None:
    if os.environ.get("BENCH_GC_FREEZE", "1") == "1":
        _freeze_after_startup()
    setattr(store_module.DuckDBStore, "_migrate", _migrate_with_threshold)  # noqa: B010
    if os.environ.get("BENCH_PLAIN_INSERT", "1") == "1":
        setattr(store_module.DuckDBStore, "append", _append_plain_first)  # noqa: B010
    from patron.cli.main import main as patron_main

    patron_main()


if __name__ == "__main__":
    main()
