"""The demo loads once: real CDNOW counts, labelled synthetic data, a write key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from patron.config import Settings
from patron.demo.loader import META_KEY, REAL_SOURCE, SYNTHETIC_SOURCE, DemoSummary
from patron.workspace import Workspace


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, DemoSummary]]:
    store = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Workspace(Settings(store=store)) as ws:
        yield ws, ws.demo.load()


def test_real_part_is_the_whole_cdnow_log(loaded: tuple[Workspace, DemoSummary]) -> None:
    ws, summary = loaded
    assert summary.real == {
        "source": REAL_SOURCE,
        "dataset": "CDNOW (real)",
        "customers": 23_570,
        "orders": 69_659,
        "first": "1997-01-01",
        "last": "1998-06-30",
    }
    events = ws.store.events()
    real = events.filter(events.source_id == REAL_SOURCE)
    first = ws.store.to_pyarrow(real.filter(real.message_id == "cdnow-1")).to_pylist()[0]
    assert (first["user_id"], first["event"]) == ("cdnow-1", "Order Completed")
    assert orjson.loads(first["raw"])["properties"] == {
        "order_id": "cdnow-1", "revenue": 11.77, "quantity": 1, "currency": "USD"
    }
    assert summary.rejected == 0


def test_synthetic_part_is_labelled_in_the_data(loaded: tuple[Workspace, DemoSummary]) -> None:
    ws, summary = loaded
    events = ws.store.events()
    synthetic = events.filter(events.source_id == SYNTHETIC_SOURCE)
    unlabelled = synthetic.filter(
        ~synthetic.raw.contains('"synthetic":true') | ~synthetic.raw.contains('"generator":"patron.demo.synthetic"')
    )
    assert ws.store.execute(unlabelled.count()) == 0
    assert summary.synthetic["identify"] == 23_570
    assert {"page", "Email Delivered", "Email Opened", "Email Link Clicked", "Survey Response Submitted"} <= set(
        summary.synthetic
    )
    assert ws.store.execute(synthetic.count()) == sum(summary.synthetic.values())
    # synthetic users are the real customers, never new ones
    outsiders = synthetic.filter(~synthetic.user_id.startswith("cdnow-"))
    assert ws.store.execute(outsiders.count()) == 0


def test_loads_once_and_makes_the_demo_key_once(loaded: tuple[Workspace, DemoSummary]) -> None:
    ws, summary = loaded
    assert summary.write_key is not None and not summary.already_loaded
    assert ws.keys.authenticate(summary.write_key, scope="write").name == "demo"
    total = ws.events.counts().total
    again = ws.demo.load()
    assert again.already_loaded and again.write_key is None
    assert again.real == summary.real and again.synthetic == summary.synthetic
    assert ws.events.counts().total == total
    assert orjson.loads(ws.store.get_meta(META_KEY) or "{}")["real"]["orders"] == 69_659


def test_demo_key_creation_survives_an_existing_key(tmp_path: Path) -> None:
    with Workspace(Settings(store=tmp_path / "s.duckdb")) as ws:
        ws.keys.create("demo", "write")
        assert ws.demo._create_key() is None
