"""The probabilistic matcher (Splink) and the engine-side connected components on every backend."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc

from bench.match_febrl import components, load_febrl3, score
from patron.identity.clusters import connected_components
from patron.identity.matching import ProbabilisticMatcher
from tests.parity.conftest import Pipeline


def test_splink_finds_the_same_pairs(pipeline: Pipeline, reference: object) -> None:
    """Splink's estimates sample random pairs, and each engine draws its own sample, so
    the weights differ in their last digits; the decisions must agree (FEBRL3, 1,000
    records with their known duplicates)."""
    pipeline.collect([{"type": "identify", "userId": "u", "messageId": "m", "timestamp": "2024-01-01T00:00:00Z"}])
    records, truth = load_febrl3()
    sample = records.slice(0, 1000)
    got = ProbabilisticMatcher(pipeline.workspace.store).match(sample, on=["soc_sec_id"])
    expected = ProbabilisticMatcher(reference.store).match(sample, on=["soc_sec_id"])  # type: ignore[attr-defined]

    def matched(pairs: pa.Table) -> set[tuple[str, str]]:
        rows = pairs.filter(pc.equal(pairs["decision"], "match")).select(["record_id_l", "record_id_r"]).to_pylist()
        return {(r["record_id_l"], r["record_id_r"]) for r in rows}

    mine, theirs = matched(got.pairs), matched(expected.pairs)
    assert len(theirs) > 150
    assert len(mine ^ theirs) <= 0.01 * len(theirs), (len(mine), len(theirs), len(mine ^ theirs))
    ids = set(sample["record_id"].to_pylist())
    within = {pair for pair in truth if pair[0] in ids and pair[1] in ids}
    assert score(mine, within).precision >= 0.98


def test_connected_components_in_the_engine(pipeline: Pipeline) -> None:
    pipeline.collect([{"type": "identify", "userId": "u", "messageId": "m", "timestamp": "2024-01-01T00:00:00Z"}])
    store = pipeline.workspace.store
    rng = random.Random(3)
    nodes = [f"n{i}" for i in range(400)]
    edges = [(rng.choice(nodes), rng.choice(nodes)) for _ in range(300)] + [(f"c{i}", f"c{i + 1}") for i in range(60)]
    table = pa.table({"a": [a for a, _ in edges], "b": [b for _, b in edges]})
    from patron.store.base import Replace

    store.write([Replace("parity_edges", table)])
    result = connected_components(store, store.table("parity_edges"), into="parity_labels")
    labels = {r["node"]: r["label"] for r in store.to_pyarrow(store.table(result.table)).to_pylist()}
    # The expected partition, by the union-find in Python: each label is its component's smallest node.
    expected = {n: min(group) for group in components(edges) for n in group}
    assert labels == expected and labels["c60"] == "c0"
    assert result.iterations < 20 and not store.has_table("parity_labels_work_0")
