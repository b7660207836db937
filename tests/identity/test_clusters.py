"""Connected components in the engine label every node with its component's smallest key,
as scipy's components would group them, in few rounds, leaving no work table behind."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from patron.identity.clusters import (
    ComponentsNotConverged,
    ComponentsResult,
    InvalidEdges,
    connected_components,
)
from patron.store import Store, open_store
from patron.store.base import Change, Replace

Key = int | str


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "s.duckdb")
    yield opened
    opened.close()


def label(
    store: Store, a: Sequence[Key], b: Sequence[Key], **options: Any
) -> tuple[ComponentsResult, dict[Key, Key]]:
    """Components of the edges ``a[i] - b[i]``: the result and each node's label."""
    store.write([Replace("edges", pa.table({"a": a, "b": b}))])
    result = connected_components(store, store.table("edges"), **options)
    rows = store.to_pyarrow(store.table(result.table))
    assert rows.column_names == ["node", "label"]
    labels = dict(zip(rows["node"].to_pylist(), rows["label"].to_pylist(), strict=True))
    assert len(labels) == rows.num_rows, "a node labelled twice"
    return result, labels


def expected(a: Sequence[Key], b: Sequence[Key]) -> dict[Key, Key]:
    """scipy's components of the same edges, each node labelled with its component's
    smallest key (Python's order, code points)."""
    keys = sorted(set(a) | set(b))
    index = {k: i for i, k in enumerate(keys)}
    rows, cols = [index[k] for k in a], [index[k] for k in b]
    matrix = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(keys), len(keys)))
    _, component = scipy_components(matrix, directed=False)
    smallest: dict[int, Key] = {}
    for key, c in zip(keys, component, strict=True):  # keys ascending: the first seen is the smallest
        smallest.setdefault(int(c), key)
    return {key: smallest[int(c)] for key, c in zip(keys, component, strict=True)}


def partition(labels: dict[Key, Key]) -> set[frozenset[Key]]:
    groups: dict[Key, set[Key]] = {}
    for node, lab in labels.items():
        groups.setdefault(lab, set()).add(node)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize(
    "order", ["ascending", "descending", "shuffled", "minimum at one end, falling from the other"]
)
def test_a_long_chain_settles_in_few_rounds(store: Store, order: str) -> None:
    n = 200
    keys = list(range(n))
    if order == "descending":
        keys.reverse()
    elif order == "shuffled":
        random.Random(3).shuffle(keys)
    elif order.startswith("minimum"):
        keys = [0, *range(n - 1, 0, -1)]
    result, labels = label(store, keys[:-1], keys[1:])
    assert labels == dict.fromkeys(range(n), 0)
    # Hooking alone would move a label one link a round: about 200 rounds.
    assert result.iterations < 20
    assert (result.nodes, result.components) == (n, 1)


def test_a_ten_thousand_node_chain_takes_about_log2_rounds(store: Store) -> None:
    n = 10_000
    result, labels = label(store, list(range(n - 1)), list(range(1, n)))
    assert set(labels.values()) == {0}
    assert result.iterations <= 20  # log2(10,000) is 13.3


@pytest.mark.parametrize(
    ("hub", "leaves", "smallest"),
    [("hub", [f"leaf{i:02}" for i in range(50)], "hub"), ("m", [f"x{i}" for i in range(50)] + ["a"], "a")],
    ids=["hub smallest", "a leaf smallest"],
)
def test_a_star_is_one_component_labelled_by_its_smallest_key(
    store: Store, hub: str, leaves: list[str], smallest: str
) -> None:
    result, labels = label(store, [hub] * len(leaves), leaves)
    assert labels == dict.fromkeys([hub, *leaves], smallest)
    assert (result.nodes, result.components) == (len(leaves) + 1, 1)


def test_disjoint_components_keep_apart(store: Store) -> None:
    edges = [
        (10, 11), (11, 12), (12, 10),  # a triangle
        (7, 30),  # a pair
        (40, 5), (5, 41), (41, 42), (42, 43),  # a chain whose smallest key is inside it
        (100, 200), (300, 200), (400, 300),  # a chain written backwards
    ]  # fmt: skip
    result, labels = label(store, [e[0] for e in edges], [e[1] for e in edges])
    assert labels == {
        10: 10, 11: 10, 12: 10,
        7: 7, 30: 7,
        40: 5, 5: 5, 41: 5, 42: 5, 43: 5,
        100: 100, 200: 100, 300: 100, 400: 100,
    }  # fmt: skip
    assert (result.nodes, result.components) == (14, 4)


def test_self_loops_duplicates_and_both_directions_change_nothing(store: Store) -> None:
    a = ["k", "k", "b", "c", "c", "b", "lonely", "z", "z"]
    b = ["k", "b", "k", "b", "c", "c", "lonely", "y", "y"]
    result, labels = label(store, a, b)
    assert labels == {"k": "b", "b": "b", "c": "b", "lonely": "lonely", "z": "y", "y": "y"}
    assert (result.nodes, result.components) == (6, 3)


def test_string_keys_compare_by_plain_order_whatever_their_length(store: Store) -> None:
    # Plain (binary) order: "" first, "10" before "9", "Z" before "a", a longer key
    # before a shorter one when it is smaller, "é" after "z".
    groups = [
        ["9", "10", "100000"],
        ["a", "Z", "zzzz"],
        ["zz", "é", "zzzzzzzzzzzzzzzzzzzz", "zy"],
        ["email:someone.with.a.long.address@example.com", "email:a@b.c", "email:"],
        ["", "x"],
    ]
    a = [g[i] for g in groups for i in range(len(g) - 1)]
    b = [g[i + 1] for g in groups for i in range(len(g) - 1)]
    _, labels = label(store, a, b)
    assert labels == expected(a, b)
    assert {labels[g[0]] for g in groups} == {"10", "Z", "zy", "email:", ""}


@pytest.mark.parametrize(
    ("nodes", "edges", "seed"),
    [(10, 6, 0), (300, 150, 1), (2000, 1000, 2), (5000, 4000, 3), (20_000, 12_000, 4), (15_000, 20_000, 5),
     (4000, 20_000, 6)],
)  # fmt: skip
def test_random_graphs_match_scipy(store: Store, nodes: int, edges: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, nodes, edges).tolist(), rng.integers(0, nodes, edges).tolist()
    result, labels = label(store, a, b)
    want = expected(a, b)
    assert partition(labels) == partition(want)
    assert labels == want
    assert (result.nodes, result.components) == (len(want), len(set(want.values())))


@pytest.mark.parametrize("seed", [7, 8])
def test_random_graphs_with_string_keys_match_scipy(store: Store, seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Keys of mixed lengths, so that string order and number order disagree.
    names = [f"{'u' if n % 3 else 'email:'}{n}{'x' * (n % 5)}" for n in range(3000)]
    a = [names[i] for i in rng.integers(0, len(names), 2500)]
    b = [names[i] for i in rng.integers(0, len(names), 2500)]
    _, labels = label(store, a, b)
    assert labels == expected(a, b)


def test_too_few_rounds_raise_and_leave_nothing(store: Store) -> None:
    recording = Recording(store)
    store.write([Replace("edges", pa.table({"a": list(range(199)), "b": list(range(1, 200))}))])
    with pytest.raises(ComponentsNotConverged, match="did not settle in 2 rounds") as raised:
        connected_components(recording, store.table("edges"), max_iterations=2)
    assert raised.value.iterations == 2
    assert raised.value.changed > 0
    assert recording.written, "no work table was written"
    assert [n for n in recording.written if store.has_table(n)] == []


def test_work_tables_are_dropped_and_the_result_kept(store: Store) -> None:
    recording = Recording(store)
    store.write([Replace("edges", pa.table({"a": ["a", "b", "d"], "b": ["b", "c", "e"]}))])
    result = connected_components(recording, store.table("edges"), into="people_clusters")
    assert result.table == "people_clusters"
    work = recording.written - {"people_clusters"}
    assert len(work) >= 2, recording.written  # links and labels, at least
    assert [n for n in work if store.has_table(n)] == []
    assert store.has_table("people_clusters")
    assert store.to_pyarrow(store.table("people_clusters").order_by("node")).to_pydict() == {
        "node": ["a", "b", "c", "d", "e"],
        "label": ["a", "a", "a", "d", "d"],
    }


def test_the_result_table_is_replaced_and_other_columns_can_be_named(store: Store) -> None:
    edges = pa.table(
        {"left": pa.array([3, 4], pa.int32()), "right": pa.array([4, 5], pa.int32()), "w": [1.0, 2.0]}
    )
    store.write([Replace("links", edges), Replace("labels", pa.table({"old": ["gone"]}))])
    result = connected_components(store, store.table("links"), src="left", dst="right", into="labels")
    table = store.to_pyarrow(store.table("labels").order_by("node"))
    assert table.schema == pa.schema([("node", pa.int64()), ("label", pa.int64())])
    assert table.to_pydict() == {"node": [3, 4, 5], "label": [3, 3, 3]}
    assert (result.nodes, result.components) == (3, 1)


def test_rows_with_a_null_end_are_skipped(store: Store) -> None:
    table = pa.table({"a": ["p", None, "r", None], "b": ["q", "q", None, None]})
    store.write([Replace("edges", table)])
    result = connected_components(store, store.table("edges"))
    assert store.to_pyarrow(store.table(result.table).order_by("node")).to_pydict() == {
        "node": ["p", "q"],
        "label": ["p", "p"],
    }


def test_no_edges_give_an_empty_table(store: Store) -> None:
    result, labels = label(store, pa.array([], pa.string()), pa.array([], pa.string()))
    assert labels == {}
    assert (result.nodes, result.components, result.iterations) == (0, 0, 1)


@pytest.mark.parametrize(
    ("columns", "message"),
    [({"a": [1], "b": ["1"]}, "both must be strings, or both integers"), ({"a": [1], "c": [2]}, "no column 'b'"),
     ({"a": [1.5], "b": [2.5]}, "both must be strings, or both integers")],
)  # fmt: skip
def test_edges_that_are_no_graph_are_refused(
    store: Store, columns: dict[str, list[Any]], message: str
) -> None:
    store.write([Replace("edges", pa.table(columns))])
    with pytest.raises(InvalidEdges, match=message):
        connected_components(store, store.table("edges"))
    assert not store.has_table("cluster_labels")


def test_max_iterations_must_allow_a_round(store: Store) -> None:
    store.write([Replace("edges", pa.table({"a": [1], "b": [2]}))])
    with pytest.raises(ValueError, match="at least 1"):
        connected_components(store, store.table("edges"), max_iterations=0)


class Recording:
    """The store, remembering the name of every table a write replaced."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.written: set[str] = set()

    def write(self, changes: list[Change], meta: dict[str, str] | None = None) -> None:
        self.written |= {c.name for c in changes if isinstance(c, Replace)}
        self._store.write(changes, meta)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
