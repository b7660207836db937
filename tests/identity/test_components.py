"""The array resolver and the resolver in the engine give what the ordered union-find
gives, on random graphs."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from pathlib import Path

import pyarrow as pa
import pytest

from patron.identity.components import SEEN_SCHEMA, edges_to_table, resolve_tables
from patron.identity.engine_resolve import WORK_TABLES, resolve_in_engine
from patron.identity.extraction import first_per_pair
from patron.identity.graph import (
    EDGES_SCHEMA,
    IDENTIFIERS_SCHEMA,
    Edge,
    GraphInput,
    MergeRules,
    Sighting,
    clusters,
    resolve,
)
from patron.identity.identifiers import Identifier
from patron.store import Store, open_store
from patron.store.base import Drop, Replace


#: Values whose order differs between bytes, code points and collations (the engine must
#: pick the same smallest identifier and anchor as Python).
AWKWARD_VALUES = ("Zoë", "zoe", "Ωmega", "émile", "😀x", "a b", "A", "ab\x1fc")


def random_graph(seed: int) -> GraphInput:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1)
    kinds = {"user_id": 40, "email": 50, "anonymous_id": 120, "phone": 20}
    nodes = [Identifier(k, f"{k[:2]}{i}") for k, n in kinds.items() for i in range(n)]
    nodes += [Identifier(rng.choice(list(kinds)), value) for value in AWKWARD_VALUES]
    nodes += [Identifier("external:crm_id", f"c{i}") for i in range(5)]
    graph = GraphInput()
    for node in nodes:
        first = start + timedelta(hours=rng.randint(0, 5000))
        graph.seen[node] = Sighting(first, first + timedelta(hours=rng.randint(0, 500)), rng.randint(1, 9))
    edges = []
    for n in range(rng.randint(100, 260)):
        a, b = sorted(rng.sample(nodes, 2))
        at = start + timedelta(hours=rng.randint(0, 6000))
        edges.append(Edge(a, b, rng.choice(["identify", "track", "alias"]), "web", f"m{n}", n, at))
    graph.edges = first_per_pair(edges)
    return graph


def case(seed: int) -> tuple[GraphInput, MergeRules, dict[tuple[Identifier, Identifier], str]]:
    """A random graph, merge rules and removed pairs (a few, and some ends never seen)."""
    graph = random_graph(seed)
    rules = MergeRules(limits={"user_id": 1, "email": 2 + seed % 3})
    removed = {(e.a, e.b): "split by hand" for e in graph.edges[: seed % 3]}
    removed[(Identifier("email", "gone@x"), Identifier("user_id", "gone"))] = "ends no longer seen"
    return graph, rules, removed


def seen_table(graph: GraphInput) -> pa.Table:
    return pa.table(
        {
            "identifier_type": [i.type for i in graph.seen],
            "identifier_value": [i.value for i in graph.seen],
            "first_seen": [s.first_seen for s in graph.seen.values()],
            "last_seen": [s.last_seen for s in graph.seen.values()],
            "messages": [s.messages for s in graph.seen.values()],
        },
        schema=SEEN_SCHEMA,
    )


def assert_resolved_as_the_union_find(
    graph: GraphInput, rules: MergeRules, removed: dict[tuple[Identifier, Identifier], str], identifiers: pa.Table, edges: pa.Table
) -> None:
    expected = resolve(graph, rules, removed)
    cluster_of = clusters(graph.seen, graph.edges)
    got = {(r["identifier_type"], r["identifier_value"]): (r["profile_id"], r["cluster"]) for r in identifiers.to_pylist()}
    assert got == {(i.type, i.value): (expected.profile_of[i], cluster_of[i]) for i in graph.seen}
    want = {e.edge_id: (state, why) for e, state, why in expected.edge_status}
    assert {r["edge_id"]: (r["status"], r["reason"]) for r in edges.to_pylist()} == want
    clustered = {e.edge_id: cluster_of[e.a] for e in graph.edges}
    assert {r["edge_id"]: r["cluster"] for r in edges.to_pylist()} == clustered
    states = {state for state, _ in want.values()}
    assert {"refused", "linked"} <= states  # the graphs exercise the limits
    if len(removed) > 1:
        assert "removed" in states


@pytest.mark.parametrize("seed", range(8))
def test_array_resolve_equals_the_ordered_union_find(seed: int) -> None:
    graph, rules, removed = case(seed)
    identifiers, edges = resolve_tables(seen_table(graph), edges_to_table(graph.edges), rules, removed)
    assert identifiers.schema == IDENTIFIERS_SCHEMA and edges.schema == EDGES_SCHEMA
    assert_resolved_as_the_union_find(graph, rules, removed, identifiers, edges)


def resolve_on(store: Store, graph: GraphInput, rules: MergeRules, removed: dict[tuple[Identifier, Identifier], str]) -> tuple[pa.Table, pa.Table]:
    """``resolve_in_engine`` on ``store``, its result read back."""
    store.write([Replace("g_seen", seen_table(graph)), Replace("g_edges", edges_to_table(graph.edges))])
    identifiers, edges = resolve_in_engine(store, store.table("g_seen"), store.table("g_edges"), rules, removed)
    store.write([Replace("g_identifiers", identifiers), Replace("g_out_edges", edges), *(Drop(t) for t in WORK_TABLES)])
    assert not any(store.has_table(t) for t in WORK_TABLES)
    return store.to_pyarrow(store.table("g_identifiers")), store.to_pyarrow(store.table("g_out_edges"))


@pytest.mark.parametrize("seed", range(8))
def test_engine_resolve_equals_the_ordered_union_find(seed: int, tmp_path: Path) -> None:
    graph, rules, removed = case(seed)
    store = open_store(tmp_path / "g.duckdb")
    identifiers, edges = resolve_on(store, graph, rules, removed)
    store.close()
    assert identifiers.schema == IDENTIFIERS_SCHEMA and edges.schema == EDGES_SCHEMA
    assert_resolved_as_the_union_find(graph, rules, removed, identifiers, edges)


def test_engine_resolve_of_a_graph_without_edges(tmp_path: Path) -> None:
    graph = random_graph(1)
    graph.edges = []
    store = open_store(tmp_path / "g.duckdb")
    identifiers, edges = resolve_on(store, graph, MergeRules(), {})
    store.close()
    assert edges.num_rows == 0 and identifiers.num_rows == len(graph.seen)
    assert identifiers["profile_id"].unique().to_pylist().__len__() == len(graph.seen)
