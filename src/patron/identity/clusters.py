"""Connected components computed inside the engine, for graphs too large for one machine.

:mod:`~patron.identity.components` finds clusters with scipy, which needs every edge in
Python's memory. Here the same answer comes from Ibis expressions that the store's
engine runs (DuckDB, or Spark through Ibis's PySpark backend), so the graph never leaves
it. Only plain joins, unions, ``group_by``/``min`` and filters are used: the expressions
are the same on every engine.

Every node points at a node of its component no larger than itself, at first itself;
the pointers form trees whose root is their smallest node. Each round is the
Shiloach-Vishkin scheme with minimum labels (as in FastSV, Zhang, Azad and Hu, 2020),
written as joins over a table of links, at first the edges:

* hooking: a root that is the larger end of a link takes the smallest other end as its
  pointer, so that a whole tree joins another at once;
* pointer jumping: every node takes its pointer's pointer, which halves the depth of the
  trees, so that a chain of 200 nodes settles in about ten rounds, not two hundred;
* contraction: each link's ends are replaced by their labels, and links inside one tree
  are left out, so that a round reads fewer links as the trees grow.

Rounds stop when no label changed; by then no link is left and every node points at the
root of its component, its smallest node.

The label is that smallest node key, not an arbitrary representative, so that every
engine gives the very same table, comparable with any other method: strings compare by
their UTF-8 bytes (the same order as Python's code points) on DuckDB and on Spark.

Each round's labels are written as a work table and read back before the next round.
Spark would otherwise plan one expression tree that grows with every round, and runs out
of JVM memory on big graphs; the written table also cuts the plan on DuckDB. The work
tables are dropped when the labels are written to the table the caller names.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from patron.identity.exceptions import IdentityError
from patron.store.base import Change, Drop, Replace, Store


class InvalidEdges(IdentityError, ValueError):
    """The edges given to :func:`connected_components` cannot be read as a graph."""

    http_status = 400
    code = "invalid_edges"

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"cannot find connected components: {problem}")


class ComponentsNotConverged(IdentityError, RuntimeError):
    """The labels still changed after the most rounds :func:`connected_components` may run."""

    code = "components_not_converged"

    def __init__(self, iterations: int, changed: int) -> None:
        self.iterations = iterations
        self.changed = changed
        super().__init__(
            f"connected components did not settle in {iterations} rounds ({changed} labels changed in the "
            "last one); pass a larger max_iterations"
        )


@dataclass(frozen=True)
class ComponentsResult:
    """Where the labels were written, and what it took."""

    table: str
    """The table of labels: ``node``, and ``label``, the smallest node key of its component."""
    iterations: int
    """Rounds run, the last one being the round in which no label changed."""
    nodes: int
    """Nodes labelled: every key that appears at either end of an edge."""
    components: int
    """Distinct labels."""


def connected_components(
    store: Store,
    edges: ir.Table,
    *,
    src: str = "a",
    dst: str = "b",
    into: str = "cluster_labels",
    max_iterations: int = 200,
) -> ComponentsResult:
    """Label every node of an undirected graph with the smallest node of its component.

    Args:
        store: The store whose engine runs the rounds and holds the tables.
        edges: An Ibis table on ``store``'s tables, one row per edge; the direction,
            duplicate edges and self-loops do not matter, and a row with a null end is
            skipped. Nodes are the keys that appear in an edge: an isolated node is the
            caller's to add.
        src: The column of one end: strings, or integers of any width.
        dst: The column of the other end, of the same kind as ``src``.
        into: The table the labels are written to (``node``, ``label``), replacing it.
            Work tables named ``{into}_work_*`` live only during the call.
        max_iterations: The most rounds to run before giving up.

    Returns:
        The table's name, the rounds it took, and how many nodes and components it holds.

    Raises:
        InvalidEdges: The columns are missing or of kinds that cannot be compared.
        ComponentsNotConverged: The labels still changed after ``max_iterations`` rounds.

    Examples:
        >>> result = connected_components(store, store.table("links"), src="left", dst="right")
        >>> store.table(result.table).group_by("label").aggregate(size=ibis._.count())
    """
    if max_iterations < 1:
        raise ValueError("max_iterations must be at least 1")
    pairs = _pairs(edges, src, dst)
    links, labels_at = (f"{into}_work_edges_0", f"{into}_work_edges_1"), (f"{into}_work_0", f"{into}_work_1")
    cleanup: list[Change] = [Drop(name) for name in (*links, *labels_at)]
    nodes = ibis.union(pairs.select(node=pairs.a), pairs.select(node=pairs.b), distinct=True)
    # Each edge once, smaller end first; a self-loop links nothing (its node is in
    # ``nodes`` all the same).
    between = pairs.filter(pairs.a != pairs.b)
    undirected = between.select(lo=ibis.least(between.a, between.b), hi=ibis.greatest(between.a, between.b))
    settled = False
    try:
        store.write(
            [Replace(links[0], undirected.distinct()), Replace(labels_at[0], nodes.mutate(label=nodes.node))]
        )
        current, rounds, changed = 0, 0, -1
        while changed != 0:
            if rounds == max_iterations:
                raise ComponentsNotConverged(rounds, changed)
            rounds += 1
            links_now, labels_now = store.table(links[current]), store.table(labels_at[current])
            current = 1 - current
            store.write([Replace(labels_at[current], _hook(links_now, labels_now))])
            labels = store.table(labels_at[current])
            changed = int(store.execute(labels.filter(labels.label != labels.old).count()))
            if changed:
                store.write([Replace(links[current], _contract(links_now, labels))])
        store.write([Replace(into, store.table(labels_at[current]).select("node", "label")), *cleanup])
        settled = True
    finally:
        if not settled:
            # Best effort: the error that brought us here is the one to report.
            with suppress(Exception):
                store.write(cleanup)
    result = store.table(into)
    counted = result.aggregate(nodes=result.count(), components=(result.node == result.label).sum())
    totals = store.to_pyarrow(counted).to_pylist()[0]
    return ComponentsResult(
        table=into, iterations=rounds, nodes=int(totals["nodes"]), components=int(totals["components"] or 0)
    )


def _pairs(edges: ir.Table, src: str, dst: str) -> ir.Table:
    """The edges as ``a, b`` of one type, rows with a null end left out."""
    missing = [c for c in (src, dst) if c not in edges.columns]
    if missing:
        raise InvalidEdges(
            f"no column {', '.join(map(repr, missing))} (the table has {', '.join(edges.columns)})"
        )
    a, b = edges[src], edges[dst]
    if a.type().is_integer() and b.type().is_integer():
        a, b = a.cast("int64"), b.cast("int64")
    elif not (a.type().is_string() and b.type().is_string()):
        raise InvalidEdges(
            f"{src!r} is {a.type()} and {dst!r} is {b.type()}; both must be strings, or both integers"
        )
    rows = edges.filter(a.notnull() & b.notnull())
    return rows.select(a=a, b=b)


def _hook(links: ir.Table, labels: ir.Table) -> ir.Table:
    """One round's labels (``node, label, old``): every root that is the larger end of a
    link points at the smallest other end, then every node at its pointer's pointer."""
    offers = links.group_by("hi").aggregate(lo=links.lo.min())
    joined = labels.left_join(offers, labels.node == offers.hi)
    # Only a root moves: a node that points elsewhere keeps its pointer, which is what
    # ties it to its tree (the link that made it was contracted away).
    moves = (labels.node == labels.label) & offers.lo.notnull()
    hooked = joined.select(
        node=labels.node, label=ibis.ifelse(moves, offers.lo, labels.label), old=labels.label
    )
    # Every label is a node's key, so the inner join keeps every node. The pointer's
    # side comes first: Ibis extends a join chain put on the left instead of joining it.
    parent = hooked.view()
    jumped = parent.join(hooked, parent.node == hooked.label)
    return jumped.select(hooked.node, label=ibis.least(hooked.label, parent.label), old=hooked.old)


def _contract(links: ir.Table, labels: ir.Table) -> ir.Table:
    """The links between the trees of ``labels``: each link's ends replaced by their labels,
    and those inside one tree left out (what keeps the rounds cheap as trees grow)."""
    low = links.join(labels, links.lo == labels.node).select(links.hi, lo=labels.label)
    high = labels.view()
    ends = low.join(high, low.hi == high.node).select(low.lo, hi=high.label)
    apart = ends.filter(ends.lo != ends.hi)
    return apart.select(lo=ibis.least(apart.lo, apart.hi), hi=ibis.greatest(apart.lo, apart.hi)).distinct()
