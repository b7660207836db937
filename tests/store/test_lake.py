"""The lake export: the event log as Parquet partitioned by day, whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.store.exceptions import LakeError
from patron.store.lake import EVENTS_DIR, MANIFEST
from patron.workspace import Workspace


def stored(ws: Workspace, messages: list[dict]) -> None:
    prepared = ws.collector.batch({"batch": messages}, source_id="web", received_at=utc_now())
    ws.store.append(rows_to_table(prepared.rows))


MESSAGES = [
    {"type": "track", "userId": f"u{i % 7}", "event": "Order Completed", "messageId": f"m{i}",
     "properties": {"revenue": i, "note": "it's \"quoted\""}, "timestamp": f"2024-0{1 + i % 3}-{1 + i % 28:02d}T23:59:59Z"}
    for i in range(60)
]  # fmt: skip


def test_the_export_holds_every_event_partitioned_by_day(tmp_path: Path) -> None:
    with Workspace(Settings(store=tmp_path / "s.duckdb")) as ws:
        stored(ws, MESSAGES)
        report = ws.events.export(tmp_path / "lake")
        expected = ws.store.to_pyarrow(ws.store.events().order_by("seq")).to_pylist()
    lake = tmp_path / "lake"
    days = sorted(p.name for p in (lake / EVENTS_DIR).iterdir())
    assert days[0] == "day=2024-01-01" and len(days) == report.days
    assert (report.events, report.max_seq) == (60, max(e["seq"] for e in expected))
    manifest = json.loads((lake / MANIFEST).read_text())
    assert manifest["events"] == 60 and manifest["partitioned_by"] == "day"
    # Read back by two other readers: every column of every event, the day beside them.
    dataset = ds.dataset(lake / EVENTS_DIR, format="parquet", partitioning="hive")
    back = dataset.to_table().sort_by("seq").to_pylist()
    assert [{k: v for k, v in row.items() if k != "day"} for row in back] == expected
    assert all(str(row["day"]) == row["timestamp"].date().isoformat() for row in back)
    query = f"SELECT count(*), count(DISTINCT day) FROM read_parquet('{lake}/{EVENTS_DIR}/*/*.parquet', hive_partitioning=true)"
    assert duckdb.sql(query).fetchone() == (60, report.days)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_an_existing_folder_is_refused_and_a_failure_leaves_nothing(tmp_path: Path) -> None:
    with Workspace(Settings(store=tmp_path / "s.duckdb")) as ws:
        stored(ws, MESSAGES[:5])
        (tmp_path / "taken").mkdir()
        (tmp_path / "taken" / "x").write_text("mine")
        with pytest.raises(LakeError, match="already exists"):
            ws.events.export(tmp_path / "taken")
        assert (tmp_path / "taken" / "x").read_text() == "mine"
        with pytest.raises(LakeError, match="does not exist"):
            ws.events.export(tmp_path / "missing" / "lake")

        def broken(folder: Path) -> dict:
            (folder / EVENTS_DIR).mkdir()
            (folder / EVENTS_DIR / "half.parquet").write_bytes(b"PAR1")
            raise LakeError("disk full")

        ws.store.export_events = broken  # type: ignore[method-assign]
        with pytest.raises(LakeError, match="disk full"):
            ws.events.export(tmp_path / "lake")
        assert not (tmp_path / "lake").exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial folder left
        (tmp_path / "empty").mkdir()
        del ws.store.export_events
        assert ws.events.export(tmp_path / "empty").events == 5


def lake_rows(lake: Path) -> list[dict]:
    from patron.store.lake import committed_files

    files = committed_files(lake)
    dataset = ds.dataset([str(f) for f in files], format="parquet", partitioning="hive")
    return dataset.to_table().sort_by("seq").to_pylist()


def test_appends_add_only_new_events_numbered_after_the_lake(tmp_path: Path) -> None:
    """Two collection stores feed one lake: each append takes what its store took since
    its last one, and ``seq`` goes on from the lake's last number."""
    lake = tmp_path / "lake"
    with Workspace(Settings(store=tmp_path / "a.duckdb")) as a, Workspace(Settings(store=tmp_path / "b.duckdb")) as b:
        stored(a, MESSAGES[:20])
        first = a.events.export(lake, append=True)  # a new lake: a whole export
        assert (first.events, first.appended, first.max_seq) == (20, 0, 20)
        stored(b, [dict(m, messageId=f"b{i}") for i, m in enumerate(MESSAGES[20:30])])
        second = b.events.export(lake, append=True, feeder="node-b")
        assert (second.events, second.appended, second.max_seq) == (10, 1, 30)
        stored(a, MESSAGES[30:45])
        third = a.events.export(lake, append=True)
        assert (third.events, third.appended, third.max_seq) == (15, 2, 45)
        assert b.events.export(lake, append=True, feeder="node-b").events == 0  # nothing new
    rows = lake_rows(lake)
    assert [r["seq"] for r in rows] == list(range(1, 46))
    assert [r["message_id"] for r in rows] == [f"m{i}" for i in range(20)] + [f"b{i}" for i in range(10)] + [
        f"m{i}" for i in range(30, 45)
    ]
    manifest = json.loads((lake / MANIFEST).read_text())
    assert (manifest["events"], manifest["appended"], manifest["max_seq"]) == (45, 2, 45)
    assert manifest["feeders"]["node-b"] == 10 and sorted(manifest["feeders"].values()) == [10, 35]
    assert manifest["days"] == len(list((lake / EVENTS_DIR).iterdir()))


def test_files_of_an_append_that_died_are_ignored_then_replaced(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    with Workspace(Settings(store=tmp_path / "a.duckdb")) as a:
        stored(a, MESSAGES[:10])
        a.events.export(lake)
        # An append that wrote its files but died before committing the manifest.
        day = lake / EVENTS_DIR / "day=2024-01-02"
        day.mkdir(exist_ok=True)
        (day / "inc-000001-0.parquet").write_bytes((next((lake / EVENTS_DIR).glob("*/*.parquet"))).read_bytes())
        assert len(lake_rows(lake)) == 10
        stored(a, MESSAGES[10:14])
        assert a.events.export(lake, append=True).events == 4
        assert [r["seq"] for r in lake_rows(lake)] == list(range(1, 15))
        with pytest.raises(LakeError, match="not a lake"):
            (tmp_path / "other").mkdir()
            (tmp_path / "other" / "x").write_text("")
            a.events.export(tmp_path / "other", append=True)
