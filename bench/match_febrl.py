"""Probabilistic matching on FEBRL3: pairwise and cluster precision/recall, and time.

    .venv/bin/python -m bench.match_febrl                # default thresholds
    .venv/bin/python -m bench.match_febrl --sweep        # figures at several match thresholds

FEBRL3 (5,000 synthetic person records, 2,000 originals and 3,000 corrupted duplicates,
6,538 true pairs) ships in ``tests/data/febrl/`` (PROVENANCE.md). Its columns are
renamed to Patron's standard trait names; the social security number is a custom trait
(``on=["soc_sec_id"]``). Clusters are the connected components of the pairs at or
above the match threshold; their pairwise figures count every pair inside a cluster.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pyarrow as pa

FEBRL3 = Path(__file__).resolve().parent.parent / "tests" / "data" / "febrl" / "dataset3.csv.gz"


def load_febrl3(path: Path = FEBRL3) -> tuple[pa.Table, set[tuple[str, str]]]:
    """FEBRL3 with standard trait names, and the true pairs (``a < b``)."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, skipinitialspace=True))

    def value(row: dict[str, str], key: str) -> str | None:
        text = (row.get(key) or "").strip()
        return text or None

    def street(row: dict[str, str]) -> str | None:
        parts = [p for p in (value(row, "street_number"), value(row, "address_1")) if p]
        return " ".join(parts) or None

    table = pa.table(
        {
            "record_id": [r["rec_id"].strip() for r in rows],
            "firstName": [value(r, "given_name") for r in rows],
            "lastName": [value(r, "surname") for r in rows],
            "birthday": [value(r, "date_of_birth") for r in rows],
            "address_street": [street(r) for r in rows],
            "address_city": [value(r, "suburb") for r in rows],
            "address_postalCode": [value(r, "postcode") for r in rows],
            "address_state": [value(r, "state") for r in rows],
            "soc_sec_id": [value(r, "soc_sec_id") for r in rows],
        }
    )
    entity: dict[str, list[str]] = defaultdict(list)
    for record_id in table["record_id"].to_pylist():
        entity[record_id.split("-")[1]].append(record_id)
    return table, pairs_within(entity.values())


def pairs_within(groups: Iterable[list[str]]) -> set[tuple[str, str]]:
    """Every pair of ids inside each group, as ``(a, b)`` with ``a < b``."""
    return {tuple(sorted(p)) for g in groups for p in combinations(g, 2)}  # type: ignore[misc]


def components(pairs: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components of the pair graph (union-find)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = defaultdict(list)
    for x in parent:
        groups[find(x)].append(x)
    return list(groups.values())


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    true_positives: int
    predicted: int
    actual: int

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        return (
            f"precision {self.precision:.4f}  recall {self.recall:.4f}  F1 {self.f1:.4f}  "
            f"({self.true_positives} of {self.predicted} predicted, {self.actual} true)"
        )


def score(predicted: set[tuple[str, str]], truth: set[tuple[str, str]]) -> Scores:
    tp = len(predicted & truth)
    return Scores(tp / len(predicted) if predicted else 1.0, tp / len(truth), tp, len(predicted), len(truth))


def evaluate(pairs: pa.Table, truth: set[tuple[str, str]], threshold: float) -> tuple[Scores, Scores]:
    """Pairwise and cluster scores of the pairs at or above ``threshold``."""
    above = [
        (a, b)
        for a, b, p in zip(
            pairs["record_id_l"].to_pylist(),
            pairs["record_id_r"].to_pylist(),
            pairs["match_probability"].to_pylist(),
            strict=True,
        )
        if p >= threshold
    ]
    return score(set(above), truth), score(pairs_within(components(above)), truth)


def main() -> None:
    from patron.identity.matching import MatchSettings, ProbabilisticMatcher
    from patron.store.duckdb import DuckDBStore

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", action="store_true", help="figures at several match thresholds")
    args = parser.parse_args()
    records, truth = load_febrl3()
    settings = MatchSettings(review_threshold=0.01) if args.sweep else MatchSettings()
    with tempfile.TemporaryDirectory() as tmp:
        store = DuckDBStore.open(Path(tmp) / "bench.duckdb")
        started = time.perf_counter()
        result = ProbabilisticMatcher(store, settings).match(records, on=["soc_sec_id"])
        elapsed = time.perf_counter() - started
        store.close()
    print(f"FEBRL3: {records.num_rows} records, {len(truth)} true pairs; matched in {elapsed:.1f} s")
    thresholds = [0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999] if args.sweep else [settings.match_threshold]
    for threshold in thresholds:
        pair_scores, cluster_scores = evaluate(result.pairs, truth, threshold)
        print(f"threshold {threshold}:\n  pairs    {pair_scores}\n  clusters {cluster_scores}")


if __name__ == "__main__":
    main()
