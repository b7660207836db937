"""Resolving the whole graph with arrays: a full resolve of millions of identifiers.

:func:`~patron.identity.graph.resolve` takes edges one by one in a fixed order, so that
the merge rules (limits per type, priority) decide the same way every time. Almost every
cluster (identifiers joined by any edge) needs none of that: when its edges form a tree
and it holds no more identifiers of a limited type than the limit allows, every edge is
taken whatever the order, and the cluster is one profile. This module finds clusters
with scipy's connected components (C, on integer ids), settles all such clusters with
array operations, and hands only the rest (cycles, limits reached, splits) to the
ordered union-find, one small graph at a time. The result is the same as resolving the
whole graph with :func:`~patron.identity.graph.resolve` (tests compare them).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.identity.graph import (
    EDGES_SCHEMA,
    IDENTIFIERS_SCHEMA,
    LINKED,
    Edge,
    GraphInput,
    MergeRules,
    Sighting,
    resolve,
)
from patron.identity.identifiers import Identifier

#: Columns of the edges a resolve reads (EDGES_SCHEMA without outcome and cluster).
EDGE_INPUT_SCHEMA = pa.schema([f for f in EDGES_SCHEMA if f.name not in ("edge_id", "status", "reason", "cluster")])
#: Columns of the identifiers a resolve reads.
SEEN_SCHEMA = pa.schema(
    [IDENTIFIERS_SCHEMA.field(n) for n in ("identifier_type", "identifier_value", "first_seen", "last_seen", "messages")]
)


def _keys(types: pa.ChunkedArray | pa.Array, values: pa.ChunkedArray | pa.Array) -> Any:
    return pc.binary_join_element_wise(types, values, "\x1f")


def _hashes(prefix: str, types: list[str], values: list[str]) -> list[str]:
    return [prefix + hashlib.sha256(f"{t}:{v}".encode()).hexdigest()[:16] for t, v in zip(types, values, strict=True)]


def resolve_tables(
    seen: pa.Table, edges: pa.Table, rules: MergeRules, removed: dict[tuple[Identifier, Identifier], str]
) -> tuple[pa.Table, pa.Table]:
    """The identifiers (``IDENTIFIERS_SCHEMA``) and edges (``EDGES_SCHEMA``) of the whole
    graph, resolved under ``rules``; ``removed`` pairs are never linked."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = seen.num_rows
    keys = _keys(seen["identifier_type"], seen["identifier_value"])
    a = pc.index_in(_keys(edges["a_type"], edges["a_value"]), value_set=keys).to_numpy(zero_copy_only=False)
    b = pc.index_in(_keys(edges["b_type"], edges["b_value"]), value_set=keys).to_numpy(zero_copy_only=False)
    if np.isnan(a.astype(float)).any() or np.isnan(b.astype(float)).any():
        raise ValueError("an edge joins an identifier that was never seen")
    a, b = a.astype(np.int64), b.astype(np.int64)
    matrix = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    count, labels = connected_components(matrix, directed=False)

    # Which clusters the ordered union-find must settle.
    size = np.bincount(labels, minlength=count)
    edge_label = labels[a]
    hard = np.bincount(edge_label, minlength=count) != size - 1
    encoded = pc.dictionary_encode(seen["identifier_type"]).combine_chunks()
    type_names = encoded.dictionary.to_pylist()
    type_index = encoded.indices.to_numpy(zero_copy_only=False)
    for kind, limit in rules.limits.items():
        if kind in type_names:
            hard |= np.bincount(labels[type_index == type_names.index(kind)], minlength=count) > limit
    if removed:
        ends = [x for pair in removed for x in pair]
        found = pc.index_in(pa.array([f"{i.type}\x1f{i.value}" for i in ends]), value_set=keys).to_numpy(zero_copy_only=False)
        found = found[~np.isnan(found.astype(float))].astype(np.int64)
        hard[labels[found]] = True

    # Cluster names: from each cluster's smallest identifier (graph.clusters does the same).
    table = pa.table(
        {"label": labels, "t": seen["identifier_type"], "v": seen["identifier_value"],
         "first": seen["first_seen"], "rank": np.array([rules.rank(t) for t in type_names])[type_index]}
    )  # fmt: skip
    by_name = table.take(pc.sort_indices(table, sort_keys=[("label", "ascending"), ("t", "ascending"), ("v", "ascending")]))
    cluster_names = np.array(_hashes("c_", *_firsts(by_name, "t", "v")), dtype=object)
    # Profile ids: from each cluster's anchor, its first-seen identifier.
    by_anchor = table.take(
        pc.sort_indices(table, sort_keys=[("label", "ascending"), ("first", "ascending"), ("rank", "ascending"), ("t", "ascending"), ("v", "ascending")])
    )
    profile_of_label = np.array(_hashes("prof_", *_firsts(by_anchor, "t", "v")), dtype=object)
    profiles = profile_of_label[labels]
    status = np.full(len(a), LINKED, dtype=object)
    reason = np.full(len(a), None, dtype=object)

    hard_nodes = np.flatnonzero(hard[labels])
    if len(hard_nodes):
        _settle(seen, edges, hard, edge_label, hard_nodes, rules, removed, profiles, status, reason)

    identifiers = pa.table(
        {
            "identifier_type": seen["identifier_type"],
            "identifier_value": seen["identifier_value"],
            "profile_id": pa.array(profiles, pa.string()),
            "cluster": pa.array(cluster_names[labels], pa.string()),
            "first_seen": seen["first_seen"],
            "last_seen": seen["last_seen"],
            "messages": seen["messages"],
        },
        schema=IDENTIFIERS_SCHEMA,
    )
    edge_ids = [
        "e_" + hashlib.sha256(f"{at}:{av}|{bt}:{bv}|{s}|{m}".encode()).hexdigest()[:16]
        for at, av, bt, bv, s, m in zip(
            *(edges[c].to_pylist() for c in ("a_type", "a_value", "b_type", "b_value", "source_id", "message_id")),
            strict=True,
        )
    ]
    edge_table = pa.table(
        {
            "edge_id": pa.array(edge_ids, pa.string()),
            **{f.name: edges[f.name] for f in EDGE_INPUT_SCHEMA if f.name != "weight"},
            "status": pa.array(status, pa.string()),
            "reason": pa.array(reason, pa.string()),
            "weight": edges["weight"],
            "cluster": pa.array(cluster_names[edge_label] if len(a) else [], pa.string()),
        },
        schema=EDGES_SCHEMA,
    )
    return identifiers, edge_table


def _firsts(sorted_table: pa.Table, *columns: str) -> list[list[Any]]:
    """The given columns of each label's first row (``sorted_table`` sorted by label)."""
    labels = sorted_table["label"].to_numpy()
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]]) if len(labels) else np.array([], dtype=np.int64)
    picked = sorted_table.take(pa.array(starts))
    return [picked[c].to_pylist() for c in columns]


def _settle(
    seen: pa.Table,
    edges: pa.Table,
    hard: np.ndarray,
    edge_label: np.ndarray,
    hard_nodes: np.ndarray,
    rules: MergeRules,
    removed: dict[tuple[Identifier, Identifier], str],
    profiles: np.ndarray,
    status: np.ndarray,
    reason: np.ndarray,
) -> None:
    """Resolve the hard clusters with the ordered union-find, writing their outcome into
    ``profiles``, ``status`` and ``reason``."""
    hard_edges = np.flatnonzero(hard[edge_label])
    graph = graph_input(seen.take(pa.array(hard_nodes)), edges.take(pa.array(hard_edges)))
    position = {id(edge): int(hard_edges[i]) for i, edge in enumerate(graph.edges)}
    resolution = resolve(graph, rules, removed)
    for i, identifier in zip(hard_nodes, graph.seen, strict=True):
        profiles[i] = resolution.profile_of[identifier]
    for edge, state, why in resolution.edge_status:
        status[position[id(edge)]] = state
        reason[position[id(edge)]] = why



def graph_input(seen: pa.Table, edges: pa.Table) -> GraphInput:
    """The graph of ``seen`` (``SEEN_SCHEMA`` rows) and ``edges`` (``EDGE_INPUT_SCHEMA``
    rows, kept in their order) as the ordered union-find takes it."""
    graph = GraphInput()
    for t, v, first, last, messages in zip(*(seen[c].to_pylist() for c in SEEN_SCHEMA.names), strict=True):
        graph.seen[Identifier(t, v)] = Sighting(first, last, messages)
    for at, av, bt, bv, kind, source, message, seq, when, weight in zip(
        *(edges[f.name].to_pylist() for f in EDGE_INPUT_SCHEMA), strict=True
    ):
        graph.edges.append(Edge(Identifier(at, av), Identifier(bt, bv), kind, source, message, seq, when, weight))
    return graph


def edges_to_table(edges: list[Edge]) -> pa.Table:
    columns = [
        [e.a.type for e in edges], [e.a.value for e in edges], [e.b.type for e in edges], [e.b.value for e in edges],
        [e.kind for e in edges], [e.source_id for e in edges], [e.message_id for e in edges], [e.seq for e in edges],
        [e.timestamp for e in edges], [e.weight for e in edges],
    ]  # fmt: skip
    return pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, EDGE_INPUT_SCHEMA, strict=True)], schema=EDGE_INPUT_SCHEMA
    )


def merge_sightings(*tables: pa.Table) -> pa.Table:
    """Sightings of the same identifier (``SEEN_SCHEMA`` rows) folded into one: first and
    last seen, messages added."""
    merged = pa.concat_tables(tables).group_by(["identifier_type", "identifier_value"]).aggregate(
        [("first_seen", "min"), ("last_seen", "max"), ("messages", "sum")]
    )
    renamed = merged.rename_columns({"first_seen_min": "first_seen", "last_seen_max": "last_seen", "messages_sum": "messages"})
    return renamed.select(SEEN_SCHEMA.names).cast(SEEN_SCHEMA)


def first_per_pair_table(edges: pa.Table) -> pa.Table:
    """One edge per pair of identifiers: the first message that linked them."""
    if edges.num_rows == 0:
        return edges
    order = [("a_type", "ascending"), ("a_value", "ascending"), ("b_type", "ascending"), ("b_value", "ascending"),
             ("timestamp", "ascending"), ("seq", "ascending")]  # fmt: skip
    ordered = edges.take(pc.sort_indices(edges, sort_keys=order))
    pair = pc.binary_join_element_wise(
        ordered["a_type"], ordered["a_value"], ordered["b_type"], ordered["b_value"], "\x1f"
    ).to_numpy(zero_copy_only=False)
    starts = np.r_[True, pair[1:] != pair[:-1]]
    return ordered.filter(pa.array(starts))
