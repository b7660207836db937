"""Resolving the whole graph inside the engine: the full resolve of a store on a cluster.

:func:`~patron.identity.components.resolve_tables` brings the graph to Python and finds
clusters with scipy: fast on one machine, but a cluster's driver cannot hold the graph of
billions of events. This module gives the very same outcome with expressions the store's
engine runs, so that only the few clusters the merge rules must decide reach Python:

1. clusters by :func:`~patron.identity.clusters.connected_components` on the node keys
   ``type \\x1f value`` (a cluster's label is its smallest identifier, as Python orders
   them);
2. per cluster, in the engine: its size, its edges, its identifiers of each limited type,
   and so whether it is *hard* (a cycle, a limit reached, a removed pair inside), exactly
   as :func:`~patron.identity.components.resolve_tables` decides;
3. cluster names, profile ids and edge ids hashed in the engine (sha256, the texts
   :mod:`~patron.identity.graph` hashes), profile ids from each cluster's anchor;
4. the hard clusters' identifiers and edges collected and resolved by the ordered
   union-find (:func:`~patron.identity.graph.resolve`), their outcome joined back.

The identity service takes this path on a store whose ``graph_in_engine`` is true (the
Spark store), and tests compare it with the in-memory path on every engine.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from patron.identity.clusters import connected_components
from patron.identity.components import EDGE_INPUT_SCHEMA, SEEN_SCHEMA, graph_input
from patron.identity.graph import (
    EDGES_SCHEMA,
    IDENTIFIERS_SCHEMA,
    LINKED,
    MergeRules,
    resolve,
)
from patron.identity.identifiers import Identifier
from patron.store.base import Replace, Store

#: Work tables of a resolve in the engine (the caller drops them once the result is written).
LABELS = "identity_work_labels"
NODES = "identity_work_nodes"
SETTLED = "identity_work_settled"
STATUSES = "identity_work_statuses"
WORK_TABLES = (LABELS, NODES, SETTLED, STATUSES)

_SEP = "\x1f"
_SETTLED_SCHEMA = pa.schema([("t", pa.string()), ("v", pa.string()), ("settled_profile", pa.string())])
_STATUS_SCHEMA = pa.schema(
    [("s_at", pa.string()), ("s_av", pa.string()), ("s_bt", pa.string()), ("s_bv", pa.string()),
     ("s_source", pa.string()), ("s_message", pa.string()), ("s_status", pa.string()), ("s_reason", pa.string())]
)  # fmt: skip


def _hashed(prefix: str, text: ir.StringValue) -> ir.StringValue:
    """``prefix`` and the first 16 hex digits of the text's sha256 (graph.py's ids)."""
    return ibis.literal(prefix) + text.hexdigest("sha256").substr(0, 16)


def _text(t: ir.StringValue, v: ir.StringValue) -> ir.StringValue:
    """An identifier as ``str(Identifier)`` writes it: ``type:value``."""
    return t + ":" + v


def resolve_in_engine(
    store: Store,
    seen: ir.Table,
    edges: ir.Table,
    rules: MergeRules,
    removed: dict[tuple[Identifier, Identifier], str],
) -> tuple[ir.Table, ir.Table]:
    """The identifiers (``IDENTIFIERS_SCHEMA``) and edges (``EDGES_SCHEMA``) of the whole
    graph resolved under ``rules``, as expressions on work tables of ``store`` (write
    them, then drop :data:`WORK_TABLES`). ``seen`` and ``edges`` are tables of the store
    (``SEEN_SCHEMA``, ``EDGE_INPUT_SCHEMA``); ``removed`` pairs are never linked."""
    keyed = edges.mutate(a_key=edges.a_type + _SEP + edges.a_value, b_key=edges.b_type + _SEP + edges.b_value)
    connected_components(store, keyed, src="a_key", dst="b_key", into=LABELS)
    labels = store.table(LABELS)

    types = store.to_pyarrow(seen.select("identifier_type").distinct()).column(0).to_pylist()
    ranks = ibis.memtable(pa.table({"rank_type": types, "rank": [rules.rank(t) for t in types]}, schema=pa.schema(
        [("rank_type", pa.string()), ("rank", pa.int64())])))  # fmt: skip
    key = seen.identifier_type + _SEP + seen.identifier_value
    with_key = seen.mutate(key=key)
    labelled = with_key.left_join(labels, with_key.key == labels.node)
    labelled = labelled.select(*SEEN_SCHEMA.names, "key", label=ibis.coalesce(labels.label, with_key.key))
    nodes = labelled.join(ranks, labelled.identifier_type == ranks.rank_type).drop("rank_type")

    hard = _hard_labels(store, nodes, keyed, rules, removed)
    # A cluster's name: its smallest identifier, which its label is.
    names = nodes.filter(nodes.key == nodes.label).select(
        name_label=nodes.label, cluster=_hashed("c_", _text(nodes.identifier_type, nodes.identifier_value))
    )
    # A profile's id: its anchor, the identifier seen first (then by rank, type, value).
    order = ibis.window(
        group_by=nodes.label,
        order_by=[nodes.first_seen, nodes["rank"], nodes.identifier_type, nodes.identifier_value],
    )
    ranked = nodes.mutate(_n=ibis.row_number().over(order))
    anchors = ranked.filter(ranked._n == 0).select(
        anchor_label=ranked.label,
        profile=_hashed("prof_", _text(ranked.identifier_type, ranked.identifier_value)),
    )
    named = nodes.join(names, nodes.label == names.name_label).join(
        anchors, nodes.label == anchors.anchor_label
    )
    named = named.left_join(hard, named.label == hard.hard_label)
    store.write([Replace(NODES, named.select(
        *SEEN_SCHEMA.names, "key", "label", "cluster", "profile", hard=hard.hard_label.notnull()
    ))])  # fmt: skip
    nodes = store.table(NODES)

    _settle_hard(store, nodes, keyed, rules, removed)
    settled = store.table(SETTLED)
    statuses = store.table(STATUSES)

    out = nodes.left_join(settled, [nodes.identifier_type == settled.t, nodes.identifier_value == settled.v])
    identifiers = out.select(
        "identifier_type", "identifier_value", profile_id=ibis.coalesce(settled.settled_profile, nodes.profile),
        cluster=nodes.cluster, first_seen=nodes.first_seen, last_seen=nodes.last_seen, messages=nodes.messages,
    )  # fmt: skip

    ends = nodes.select(end_key=nodes.key, end_cluster=nodes.cluster)
    with_cluster = keyed.join(ends, keyed.a_key == ends.end_key)
    outcome = with_cluster.left_join(
        statuses,
        [with_cluster.a_type == statuses.s_at, with_cluster.a_value == statuses.s_av,
         with_cluster.b_type == statuses.s_bt, with_cluster.b_value == statuses.s_bv,
         with_cluster.source_id == statuses.s_source, with_cluster.message_id == statuses.s_message],
    )  # fmt: skip
    edge_text = (
        _text(outcome.a_type, outcome.a_value) + "|" + _text(outcome.b_type, outcome.b_value)
        + "|" + outcome.source_id + "|" + outcome.message_id
    )  # fmt: skip
    edge_table = outcome.select(
        edge_id=_hashed("e_", edge_text),
        **{f.name: outcome[f.name] for f in EDGE_INPUT_SCHEMA if f.name != "weight"},
        status=ibis.coalesce(outcome.s_status, ibis.literal(LINKED)),
        reason=outcome.s_reason,
        weight=outcome.weight,
        cluster=outcome.end_cluster,
    )
    return identifiers.cast(ibis.schema(IDENTIFIERS_SCHEMA)), edge_table.cast(ibis.schema(EDGES_SCHEMA))


def _hard_labels(
    store: Store,
    nodes: ir.Table,
    edges: ir.Table,
    rules: MergeRules,
    removed: dict[tuple[Identifier, Identifier], str],
) -> ir.Table:
    """The labels (``hard_label``) of the clusters the ordered union-find must settle: not
    a tree, more identifiers of a limited type than the limit, or a removed pair inside."""
    counts: dict[str, Any] = {"size": nodes.count()}
    for i, (kind, _) in enumerate(rules.limits.items()):
        counts[f"n{i}"] = (nodes.identifier_type == kind).cast("int64").sum()
    per_cluster = nodes.group_by(count_label=nodes.label).aggregate(**counts)
    ends = nodes.select(edge_key=nodes.key, edge_label=nodes.label)
    edge_labels = edges.join(ends, edges.a_key == ends.edge_key)
    per_edges = edge_labels.group_by(edges_label=edge_labels.edge_label).aggregate(edges=edge_labels.count())
    stats = per_cluster.left_join(per_edges, per_cluster.count_label == per_edges.edges_label)
    is_hard = ibis.coalesce(stats.edges, 0) != stats.size - 1
    for i, (_, limit) in enumerate(rules.limits.items()):
        is_hard = is_hard | (stats[f"n{i}"] > limit)
    flagged = stats.filter(is_hard).select(hard_label=stats.count_label)
    if not removed:
        return flagged
    keys = sorted({f"{i.type}{_SEP}{i.value}" for pair in removed for i in pair})
    wanted = ibis.memtable(pa.table({"removed_key": pa.array(keys, pa.string())}))
    split = nodes.semi_join(wanted, nodes.key == wanted.removed_key).select(hard_label=nodes.label)
    return ibis.union(flagged, split, distinct=True)


def _settle_hard(
    store: Store,
    nodes: ir.Table,
    edges: ir.Table,
    rules: MergeRules,
    removed: dict[tuple[Identifier, Identifier], str],
) -> None:
    """Resolve the hard clusters with the ordered union-find; their identifiers' profiles
    go to :data:`SETTLED`, their edges' outcomes to :data:`STATUSES`."""
    hard_nodes = nodes.filter(nodes.hard)
    members = store.to_pyarrow(hard_nodes.select(*SEEN_SCHEMA.names))
    flagged = hard_nodes.select(hard_key=hard_nodes.key)
    hard_edges = edges.semi_join(flagged, edges.a_key == flagged.hard_key).select(*EDGE_INPUT_SCHEMA.names)
    graph = graph_input(members, store.to_pyarrow(hard_edges))
    resolution = resolve(graph, rules, removed)
    settled = pa.table(
        {"t": [i.type for i in resolution.profile_of], "v": [i.value for i in resolution.profile_of],
         "settled_profile": list(resolution.profile_of.values())},
        schema=_SETTLED_SCHEMA,
    )  # fmt: skip
    columns: list[list[Any]] = [[] for _ in _STATUS_SCHEMA]
    for edge, state, why in resolution.edge_status:
        for column, value in zip(
            columns,
            (
                edge.a.type,
                edge.a.value,
                edge.b.type,
                edge.b.value,
                edge.source_id,
                edge.message_id,
                state,
                why,
            ),
            strict=True,
        ):
            column.append(value)
    statuses = pa.Table.from_arrays(
        [pa.array(c, f.type) for c, f in zip(columns, _STATUS_SCHEMA, strict=True)], schema=_STATUS_SCHEMA
    )
    store.write([Replace(SETTLED, settled), Replace(STATUSES, statuses)])
