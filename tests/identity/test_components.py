"""The array resolver gives what the ordered union-find gives, on random graphs."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from patron.identity.components import SEEN_SCHEMA, edges_to_table, resolve_tables
from patron.identity.extraction import first_per_pair
from patron.identity.graph import Edge, GraphInput, MergeRules, Sighting, clusters, resolve
from patron.identity.identifiers import Identifier


def random_graph(seed: int) -> GraphInput:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1)
    kinds = {"user_id": 40, "email": 50, "anonymous_id": 120, "phone": 20}
    nodes = [Identifier(k, f"{k[:2]}{i}") for k, n in kinds.items() for i in range(n)]
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


@pytest.mark.parametrize("seed", range(8))
def test_array_resolve_equals_the_ordered_union_find(seed: int) -> None:
    graph = random_graph(seed)
    rules = MergeRules(limits={"user_id": 1, "email": 2 + seed % 3})
    removed = {tuple(sorted((e.a, e.b))): "split by hand" for e in graph.edges[: seed % 3]}
    expected = resolve(graph, rules, removed)  # type: ignore[arg-type]
    cluster_of = clusters(graph.seen, graph.edges)
    seen = pa.table(
        {
            "identifier_type": [i.type for i in graph.seen],
            "identifier_value": [i.value for i in graph.seen],
            "first_seen": [s.first_seen for s in graph.seen.values()],
            "last_seen": [s.last_seen for s in graph.seen.values()],
            "messages": [s.messages for s in graph.seen.values()],
        },
        schema=SEEN_SCHEMA,
    )
    identifiers, edges = resolve_tables(seen, edges_to_table(graph.edges), rules, removed)  # type: ignore[arg-type]
    got = {(r["identifier_type"], r["identifier_value"]): (r["profile_id"], r["cluster"]) for r in identifiers.to_pylist()}
    assert got == {(i.type, i.value): (expected.profile_of[i], cluster_of[i]) for i in graph.seen}
    want = {e.edge_id: (state, why) for e, state, why in expected.edge_status}
    assert {r["edge_id"]: (r["status"], r["reason"]) for r in edges.to_pylist()} == want
    states = {state for state, _ in want.values()}
    assert "refused" in states and "linked" in states  # the graphs exercise the limits
