"""A full resolve that keeps the graph in the engine (the Spark store's path) stores the
same graph as the in-memory resolve, through aliases, probable links, splits and
redirects; on DuckDB here, on Spark in tests/parity."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from patron.config import Settings
from patron.identity.engine_resolve import WORK_TABLES
from patron.identity.service import ENGINE_WORK
from patron.workspace import Workspace
from tests.identity.test_incremental import random_messages, snapshot
from tests.identity.test_incremental import store as collect

EXTRA = [
    {"type": "identify", "userId": "crm-1", "traits": {"email": "ann@crm.example"}},
    {"type": "identify", "userId": "crm-2", "traits": {"email": "ann.b@crm.example"}},
    {"type": "identify", "anonymousId": "web-9", "traits": {"email": "ann.b@web.example"}},
]
for n, message in enumerate(EXTRA):  # the same ids and times in both stores
    message.update(messageId=f"extra-{n}", timestamp=f"2024-03-0{n + 1}T09:00:00Z")


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Workspace, Workspace]]:
    """Two stores of the same messages: one resolves in memory, one in the engine."""
    memory = Workspace(Settings(store=tmp_path / "memory.duckdb"))
    engine = Workspace(Settings(store=tmp_path / "engine.duckdb"))
    engine.identity.in_engine = True
    assert memory.identity.in_engine is False, "DuckDB resolves in memory unless told"
    for ws in (memory, engine):
        collect(ws, random_messages(21, 320))
        collect(ws, EXTRA)
    yield memory, engine
    memory.close()
    engine.close()


def without_split_ids(ws: Workspace) -> dict[str, list[tuple[str, ...]]]:
    """The snapshot with each split's own id masked (a hash of when it was made)."""
    return {
        name: [tuple(re.sub(r"split_[0-9a-f]+", "split_*", v) for v in row) for row in rows]
        for name, rows in snapshot(ws).items()
    }


def redirects(ws: Workspace) -> list[tuple[Any, ...]]:
    rows = ws.store.to_pyarrow(ws.store.table("identity_redirects").select("old_profile_id", "profile_id"))
    return sorted(tuple(r.values()) for r in rows.to_pylist())


def test_the_same_graph_profiles_and_traits(pair: tuple[Workspace, Workspace]) -> None:
    memory, engine = pair
    for ws in pair:
        ws.profiles.build(full=True)
    expected = snapshot(memory)
    assert snapshot(engine) == expected
    statuses = {row[1] for row in expected["identity_edges"]}
    assert {"linked", "refused"} <= statuses
    assert not any(engine.store.has_table(t) for t in (*WORK_TABLES, *ENGINE_WORK))
    assert engine.identity.resolve().identifiers == memory.identity.resolve().identifiers


def test_probable_links_splits_and_redirects_alike(pair: tuple[Workspace, Workspace]) -> None:
    memory, engine = pair
    for ws in pair:
        ws.profiles.build(full=True)
        one, two = ws.identity.profile_id("email:ann@crm.example"), ws.identity.profile_id("anonymous_id:web-9")
        pairs = pa.Table.from_pylist([{"record_id_l": one, "record_id_r": two, "match_weight": 9.5,
                                       "match_probability": 0.998, "weights": None, "decision": "match"}])  # fmt: skip
        ws.identity.add_probable(pairs)
        ws.identity.resolve(full=True)
        assert ws.identity.profile_id("email:ann@crm.example") == ws.identity.profile_id("anonymous_id:web-9")
    assert snapshot(engine) == snapshot(memory)

    # Split a profile at one of its links: a removal, and a full rebuild by the split itself.
    edges = memory.store.to_pyarrow(memory.store.table("identity_edges")).to_pylist()
    link = next(e for e in edges if e["status"] == "linked" and e["a_type"] == "anonymous_id")
    for ws in pair:
        profile = ws.identity.profile_id(f"{link['a_type']}:{link['a_value']}")
        ws.identity.split(profile, edge_id=link["edge_id"], reason="shared device")
        ws.profiles.build()
    assert without_split_ids(engine) == without_split_ids(memory)
    removed = [e for e in snapshot(memory)["identity_edges"] if e[1] == "removed"]
    assert removed, "the split's link is kept as removed"
    assert redirects(engine) == redirects(memory) != []
