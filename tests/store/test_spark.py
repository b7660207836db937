"""The Spark store's own contract: writes all or nothing, what it refuses, what it needs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest

from patron.store.base import Append, DeleteRows, Drop, KeyRecord, Replace, ReplaceRows
from patron.store.exceptions import BackendUnavailable, LakeError, NotOnThisStore


def lake(tmp_path: Path) -> Path:
    """A lake with two events, as `patron export events` writes it."""
    from patron.config import Settings
    from patron.workspace import Workspace
    from tests.identity.test_incremental import store as collect

    with Workspace(Settings(store=tmp_path / "c.duckdb")) as ws:
        collect(ws, [{"type": "identify", "userId": "u1", "traits": {"email": "a@x.example"}},
                     {"type": "track", "userId": "u1", "event": "Viewed", "properties": {"n": 1}}])  # fmt: skip
        ws.events.export(tmp_path / "lake")
    return tmp_path / "lake"


def rows(store: Any, name: str) -> list[dict[str, Any]]:
    return sorted(store.to_pyarrow(store.table(name)).to_pylist(), key=lambda r: tuple(str(v) for v in r.values()))


@pytest.mark.spark
def test_changes_are_applied_in_order_and_seen_by_a_new_reader(spark: Any, tmp_path: Path) -> None:
    from patron.store.spark import SparkStore

    store = SparkStore.open(lake(tmp_path))
    assert store.execute(store.events().count()) == 2 and store.execute(store.events().seq.max()) == 2
    base = pa.table({"k": pa.array([1, 2, 3], pa.int64()), "v": ["a", "b", "c"]})
    store.write([Replace("t", base)], {"m": "1"})
    t = store.table("t")
    store.write(
        [
            # The new rows read the very table they replace.
            ReplaceRows("t", ("k",), t.filter(t.k >= 2).mutate(v=t.v.upper())),
            Append("t", pa.table({"v": ["d"], "k": pa.array([4], pa.int32())})),  # by name, conformed
            DeleteRows("t", ("k",), pa.table({"k": pa.array([1], pa.int64())})),
            Replace("work", base, temporary=True),
            Replace("kept", ibis.table(base.schema, name="work").filter(ibis._.k == 3)),
            Drop("work"),
        ],
        {"m": "2"},
    )
    again = SparkStore.open(store.path)
    assert rows(again, "t") == [{"k": 2, "v": "B"}, {"k": 3, "v": "C"}, {"k": 4, "v": "d"}]
    assert rows(again, "kept") == [{"k": 3, "v": "c"}]
    assert again.table("t").schema() == store.table("t").schema() and again.get_meta("m") == "2"
    assert not again.has_table("work")
    store.write([Replace("empty", store.table("t").filter(ibis._.k > 99))])
    assert rows(again, "empty") == [] and again.table("empty").columns == ("k", "v")


@pytest.mark.spark
def test_a_failed_write_keeps_the_tables_as_they_were(spark: Any, tmp_path: Path) -> None:
    from patron.store.catalog import TABLES_DIR
    from patron.store.spark import SparkStore

    store = SparkStore.open(lake(tmp_path))
    store.write([Replace("t", pa.table({"k": [1, 2]}))], {"m": "1"})
    folders = sorted((store.path / "_patron" / TABLES_DIR).rglob("v-*"))
    broken = ibis.table({"nope": "int64"}, name="missing_table")
    with pytest.raises(Exception, match="missing_table"):
        store.write([Replace("t", pa.table({"k": [9]})), Replace("u", broken)], {"m": "2"})
    assert rows(store, "t") == [{"k": 1}, {"k": 2}] and store.get_meta("m") == "1" and not store.has_table("u")
    assert sorted((store.path / "_patron" / TABLES_DIR).rglob("v-*")) == folders  # nothing left behind


def test_collecting_is_refused_with_where_to_do_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patron.store.spark import SparkStore

    store = SparkStore.__new__(SparkStore)  # no session needed to refuse
    store.path = tmp_path
    for call in (lambda: store.append(pa.table({})), lambda: store.add_key(KeyRecord("k", "s", "write", "h", "p", None, None))):  # type: ignore[arg-type]
        with pytest.raises(NotOnThisStore, match="collection service"):
            call()
    with pytest.raises(LakeError, match="not a lake folder"):
        SparkStore.open(tmp_path / "missing")
    with pytest.raises(LakeError, match="no events/ folder"):
        SparkStore.open(tmp_path)


def test_without_pyspark_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from patron.store.spark import spark_session

    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'patron\[spark\]'"):
        spark_session()
