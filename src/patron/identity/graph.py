"""The identity graph: identifiers are nodes, messages link them, profiles are components.

Edges come from every message that carries more than one identifier (an identify with
a userId, an anonymousId and an email; an imported CRM record with its external id and
email) and from alias calls (``previousId`` to ``userId``). Each edge keeps the message
that made it, its source and its time, so every merge can be explained.

A profile is a connected component under **merge rules** (:class:`MergeRules`): edges
are taken strongest first (see ``priority``), then oldest first, and an edge that would
give a profile more identifiers of a type than its limit allows is *refused* rather than
merged; by default a profile holds one ``user_id``, so two user ids are never merged
automatically. Each edge ends as ``linked`` (it joined two profiles: the chain that
explains a profile), ``redundant`` (both ends were already one profile), ``refused``
(with the rule it would have broken) or ``removed`` (a person split the two identifiers
apart; the removal is kept, so no message links them again, replayed or new).

A profile's id is derived from its *anchor*, the identifier seen first (ties: by type
priority, then value). When profiles merge, the anchor of the older one survives, and
with it its id; ids that disappear are recorded as redirects to the profile that now
holds their anchor, so an old id still resolves.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from patron.identity.identifiers import (
    EXTERNAL_PREFIX,
    Identifier,
)

#: Default limits per identifier type per profile (types not listed are unlimited).
DEFAULT_LIMITS: dict[str, int] = {"user_id": 1, "email": 5, "phone": 5}
#: Strongest first: edges whose weaker end ranks higher are taken first.
DEFAULT_PRIORITY: tuple[str, ...] = ("user_id", "external", "email", "phone", "anonymous_id")

LINKED = "linked"
REDUNDANT = "redundant"
REFUSED = "refused"
REMOVED = "removed"


@dataclass(frozen=True)
class MergeRules:
    """Which links the graph accepts.

    Args:
        limits: most identifiers of each type one profile may hold.
        priority: identifier types strongest first (``external`` stands for every
            ``external:<kind>``); an edge ranks as its weaker end.
    """

    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    priority: tuple[str, ...] = DEFAULT_PRIORITY

    def rank(self, kind: str) -> int:
        key = "external" if kind.startswith(EXTERNAL_PREFIX) else kind
        try:
            return self.priority.index(key)
        except ValueError:
            return len(self.priority)


@dataclass(frozen=True, slots=True)
class Edge:
    """A link between two identifiers, made by one message (or one matching run)."""

    a: Identifier
    b: Identifier
    kind: str
    source_id: str
    message_id: str
    seq: int
    timestamp: datetime
    weight: float | None = None
    """For ``probabilistic`` edges: the match weight (log2 Bayes factor) of the pair."""

    @property
    def edge_id(self) -> str:
        text = f"{self.a}|{self.b}|{self.source_id}|{self.message_id}"
        return "e_" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Sighting:
    first_seen: datetime
    last_seen: datetime
    messages: int = 0


@dataclass
class GraphInput:
    """Edges and sightings read from the event log."""

    edges: list[Edge] = field(default_factory=list)
    seen: dict[Identifier, Sighting] = field(default_factory=dict)
    refused: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))


#: Identifier types by strength, for choosing each message's anchor (extraction.py).
_PRIORITY_HINT = {kind: rank for rank, kind in enumerate(DEFAULT_PRIORITY)}


@dataclass
class Resolution:
    """The outcome of resolving a graph."""

    profile_of: dict[Identifier, str]
    edge_status: list[tuple[Edge, str, str | None]]
    """Each edge with ``linked`` / ``redundant`` / ``refused`` and, when refused, why."""

    def profiles(self) -> dict[str, list[Identifier]]:
        members: dict[str, list[Identifier]] = defaultdict(list)
        for identifier, profile in self.profile_of.items():
            members[profile].append(identifier)
        return {p: sorted(ids) for p, ids in members.items()}


class _Components:
    """Union-find that also counts each component's identifiers by type."""

    def __init__(self) -> None:
        self.parent: dict[Identifier, Identifier] = {}
        self.counts: dict[Identifier, dict[str, int]] = {}

    def add(self, node: Identifier) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.counts[node] = {node.type: 1}

    def find(self, node: Identifier) -> Identifier:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:  # path compression
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: Identifier, b: Identifier) -> None:
        ra, rb = self.find(a), self.find(b)
        if sum(self.counts[ra].values()) < sum(self.counts[rb].values()):
            ra, rb = rb, ra  # the smaller tree goes under the larger
        self.parent[rb] = ra
        merged = self.counts[ra]
        for kind, n in self.counts.pop(rb).items():
            merged[kind] = merged.get(kind, 0) + n


def resolve(
    graph: GraphInput, rules: MergeRules, removed: dict[tuple[Identifier, Identifier], str] | None = None
) -> Resolution:
    """Profiles as components of the graph under the merge rules (module docstring).

    Args:
        removed: identifier pairs (sorted) a person split apart, with why; edges between
            them are never taken.
    """
    removed = removed or {}
    components = _Components()
    for identifier in graph.seen:
        components.add(identifier)
    ordered = sorted(
        graph.edges,
        key=lambda e: (max(rules.rank(e.a.type), rules.rank(e.b.type)), e.timestamp, e.seq, e.a, e.b),
    )
    status: list[tuple[Edge, str, str | None]] = []
    for edge in ordered:
        why = removed.get((edge.a, edge.b))
        if why is not None:
            status.append((edge, REMOVED, why))
            continue
        ra, rb = components.find(edge.a), components.find(edge.b)
        if ra == rb:
            status.append((edge, REDUNDANT, None))
            continue
        broken = _broken_limit(components.counts[ra], components.counts[rb], rules.limits)
        if broken:
            status.append((edge, REFUSED, broken))
            continue
        components.union(ra, rb)
        status.append((edge, LINKED, None))
    members: dict[Identifier, list[Identifier]] = defaultdict(list)
    for identifier in graph.seen:
        members[components.find(identifier)].append(identifier)
    profile_of: dict[Identifier, str] = {}
    for group in members.values():
        anchor = min(group, key=lambda i: (graph.seen[i].first_seen, rules.rank(i.type), i.type, i.value))
        profile = profile_id_for(anchor)
        for identifier in group:
            profile_of[identifier] = profile
    return Resolution(profile_of, status)


def clusters(seen: Iterator[Identifier] | set[Identifier] | dict[Identifier, Any], edges: list[Edge]) -> dict[Identifier, str]:
    """Each identifier's *cluster*: its connected component when every edge counts (refused
    and removed ones too). Whether an edge is taken depends only on the edges before it in
    the same cluster, so a cluster can be resolved again on its own (an incremental
    resolve) with the result a full resolve would give."""
    components = _Components()
    for identifier in seen:
        components.add(identifier)
    for edge in edges:
        components.add(edge.a)
        components.add(edge.b)
        ra, rb = components.find(edge.a), components.find(edge.b)
        if ra != rb:
            components.union(ra, rb)
    smallest: dict[Identifier, Identifier] = {}
    for identifier in components.parent:
        root = components.find(identifier)
        if root not in smallest or identifier < smallest[root]:
            smallest[root] = identifier
    names = {root: "c_" + hashlib.sha256(str(first).encode()).hexdigest()[:16] for root, first in smallest.items()}
    return {identifier: names[components.find(identifier)] for identifier in components.parent}


def _broken_limit(a: dict[str, int], b: dict[str, int], limits: dict[str, int]) -> str | None:
    for kind, limit in limits.items():
        together = a.get(kind, 0) + b.get(kind, 0)
        if together > limit:
            return f"a profile may hold at most {limit} {kind} (would hold {together})"
    return None


def profile_id_for(anchor: Identifier) -> str:
    """The id of the profile anchored at ``anchor`` (stable across rebuilds)."""
    return "prof_" + hashlib.sha256(str(anchor).encode()).hexdigest()[:16]


IDENTIFIERS_SCHEMA = pa.schema(
    [
        ("identifier_type", pa.string()),
        ("identifier_value", pa.string()),
        ("profile_id", pa.string()),
        ("cluster", pa.string()),
        ("first_seen", pa.timestamp("us")),
        ("last_seen", pa.timestamp("us")),
        ("messages", pa.int64()),
    ]
)

EDGES_SCHEMA = pa.schema(
    [
        ("edge_id", pa.string()),
        ("a_type", pa.string()),
        ("a_value", pa.string()),
        ("b_type", pa.string()),
        ("b_value", pa.string()),
        ("kind", pa.string()),
        ("source_id", pa.string()),
        ("message_id", pa.string()),
        ("seq", pa.int64()),
        ("timestamp", pa.timestamp("us")),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("weight", pa.float64()),
        ("cluster", pa.string()),
    ]
)
