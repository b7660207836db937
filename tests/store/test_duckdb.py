"""The DuckDB store: append semantics, settings, and the lock held by one process."""

from __future__ import annotations

from pathlib import Path

import pytest

from patron.collect.spec import MessageValidator, rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.store import StoreLocked, open_store
from patron.workspace import Workspace

validator = MessageValidator(max_message_bytes=32_000, max_future=Settings().max_future)


def table(ids: list[str], source: str = "web"):  # type: ignore[no-untyped-def]
    now = utc_now()
    return rows_to_table(
        [validator.check({"type": "track", "userId": "u", "event": "E", "messageId": i}, source_id=source, received_at=now) for i in ids]  # type: ignore[misc]
    )


def test_append_reports_exactly_the_new_keys_when_some_are_stored(store_path: Path) -> None:
    store = open_store(store_path)
    try:
        assert store.append(table(["a", "b"])).inserted == {("web", "a"), ("web", "b")}
        # A group mixing stored and new messages, with a duplicate inside it too.
        result = store.append(table(["b", "c", "c", "d"]))
        assert result.inserted == {("web", "c"), ("web", "d")}
        assert store.execute(store.events().count()) == 4
        seqs = store.to_pyarrow(store.events().order_by("seq")).column("message_id").to_pylist()
        assert seqs == ["a", "b", "c", "d"]
    finally:
        store.close()


def test_checkpoint_threshold_comes_from_settings(store_path: Path) -> None:
    with Workspace(Settings(store=store_path, checkpoint_threshold="64MB")) as ws:
        cur = ws.store._cursor()  # type: ignore[attr-defined]
        value = cur.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
    assert value == "61.0 MiB"  # 64 MB, as DuckDB 1.5 prints it


def test_a_second_writer_is_told_who_holds_the_store(store_path: Path) -> None:
    import subprocess
    import sys

    holder = subprocess.Popen(
        [sys.executable, "-c", f"from patron.store import open_store; s = open_store({str(store_path)!r}); print('open', flush=True); input()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLocked, match=f"PID {holder.pid}"):
            open_store(store_path)
    finally:
        holder.communicate("\n", timeout=30)


def test_replace_tables_is_atomic_and_guards_names(store_path: Path) -> None:
    import pyarrow as pa

    store = open_store(store_path)
    try:
        store.replace_tables({"identity_x": pa.table({"a": [1, 2]}), "identity_y": pa.table({"b": ["x"]})})
        assert store.has_table("identity_x") and store.execute(store.table("identity_x").count()) == 2
        with pytest.raises(ValueError, match="not a derived table"):
            store.replace_tables({"identity_x": pa.table({"a": [9]}), "events": pa.table({"a": [1]})})
        # Nothing of the refused call was written: the first table still has its old rows.
        assert store.to_pyarrow(store.table("identity_x")).column("a").to_pylist() == [1, 2]
        assert store.execute(store.events().count()) == 0
    finally:
        store.close()


def test_append_table_creates_then_appends(store_path: Path) -> None:
    import pyarrow as pa

    store = open_store(store_path)
    try:
        store.append_table("identity_removals_test", pa.table({"a": ["x"]}))
        store.append_table("identity_removals_test", pa.table({"a": ["y"]}))
        assert store.to_pyarrow(store.table("identity_removals_test")).column("a").to_pylist() == ["x", "y"]
        with pytest.raises(ValueError, match="not a derived table name"):
            store.append_table("events", pa.table({"a": ["z"]}))
    finally:
        store.close()


def test_a_table_replaced_by_an_empty_one_keeps_a_large_insert_of_the_same_write(store_path: Path) -> None:
    # DuckDB 1.5.6 drops the rows of a parallel insert into a table created, in the same
    # transaction, from an empty Arrow table: a store's first segment (empty history,
    # then hundreds of thousands of entries) lost them all.
    import pyarrow as pa

    from patron.store.base import Append, Replace

    store = open_store(store_path)
    try:
        store.replace_tables({"bench_source_test": pa.table({"n": pa.array(range(600_000), pa.int64())})})
        store.checkpoint()
        source = store.table("bench_source_test")
        empty = pa.schema([("n", pa.int64())]).empty_table()
        store.write([Replace("bench_target_test", empty), Append("bench_target_test", source.filter(source.n % 2 == 0))])
        assert store.execute(store.table("bench_target_test").count()) == 300_000
    finally:
        store.close()


def test_the_engine_keeps_to_the_memory_limit_in_settings(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with Workspace(Settings(store=tmp_path / "s.duckdb", memory_limit="1GB")) as ws:
        assert ws.store._query("SELECT current_setting('memory_limit')") == [("953.6 MiB",)]  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="PATRON_MEMORY_LIMIT must be a size"):
        Settings(memory_limit="lots")
