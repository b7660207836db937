"""Probable links: pairs of profiles the probabilistic matcher scored as one person.

Each pair links the two profiles' anchor identifiers and is kept in
``identity_probable_links`` with its match weight, probability, the weights of each
comparison (why), the run that found it, and its status:

``match``     at or above the match threshold: the graph links it
``review``    between the review and the match threshold: waits for a person
``accepted``  a person accepted it (``patron identity review --accept``): linked
``rejected``  a person rejected it: never linked, and not proposed again

Runs are additive: a new run adds the pairs it finds and keeps every earlier pair and
decision, so profiles merged by an earlier run do not fall apart because the merged
profile is no longer a pair. A link is undone like any other, with ``patron identity
split``, or by rejecting it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from patron.identity.graph import Edge
from patron.identity.identifiers import Identifier

PROBABLE = "identity_probable_links"
LINKING_STATUSES = ("match", "accepted")

SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("a_type", pa.string()),
        ("a_value", pa.string()),
        ("b_type", pa.string()),
        ("b_value", pa.string()),
        ("match_weight", pa.float64()),
        ("match_probability", pa.float64()),
        ("weights", pa.string()),
        ("status", pa.string()),
        ("run_id", pa.string()),
        ("matched_at", pa.timestamp("us")),
        ("decided_at", pa.timestamp("us")),
    ]
)


def pair_id(a: Identifier, b: Identifier) -> str:
    a, b = sorted((a, b))
    return "pair_" + hashlib.sha256(f"{a}|{b}".encode()).hexdigest()[:16]


def merge_run(
    previous: list[dict[str, Any]], pairs: pa.Table, anchors: dict[str, Identifier], run_id: str, now: datetime
) -> pa.Table:
    """Earlier links and decisions, plus the pairs of this run that are new."""
    rows = {row["pair_id"]: row for row in previous}
    for pair in pairs.to_pylist():
        a, b = anchors.get(pair["record_id_l"]), anchors.get(pair["record_id_r"])
        if a is None or b is None or a == b:
            continue
        a, b = sorted((a, b))
        key = pair_id(a, b)
        if key in rows:
            continue  # an earlier run found it: its status and any decision stand
        weights = pair.get("weights")
        rows[key] = {
            "pair_id": key,
            "a_type": a.type,
            "a_value": a.value,
            "b_type": b.type,
            "b_value": b.value,
            "match_weight": pair["match_weight"],
            "match_probability": pair["match_probability"],
            "weights": orjson.dumps(dict(weights) if weights else {}).decode(),
            "status": pair["decision"],
            "run_id": run_id,
            "matched_at": now,
            "decided_at": None,
        }
    return pa.Table.from_pylist(sorted(rows.values(), key=lambda r: r["pair_id"]), schema=SCHEMA)


def linking_edges(rows: list[dict[str, Any]], known: set[Identifier]) -> list[Edge]:
    """The edges the graph takes from probable links (matched or accepted ones)."""
    edges = []
    for row in rows:
        if row["status"] not in LINKING_STATUSES:
            continue
        a = Identifier(row["a_type"], row["a_value"])
        b = Identifier(row["b_type"], row["b_value"])
        if a in known and b in known:
            edges.append(
                Edge(a, b, "probabilistic", "matcher", row["pair_id"], -1, row["matched_at"], row["match_weight"])
            )
    return edges
