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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from patron.identity.identifiers import (
    ANONYMOUS_ID,
    EXTERNAL_PREFIX,
    USER_ID,
    Identifier,
    IdentifierRules,
    RefusedIdentifier,
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


def read_messages(rows: Iterable[dict[str, Any]], rules: IdentifierRules) -> GraphInput:
    """Identifiers and edges of event-log rows (``seq``, ``source_id``, ``message_id``,
    ``type``, ``previous_id``, ``timestamp``, ``raw``)."""
    graph = GraphInput()
    known_user_ids: set[str] = set()
    aliases: list[tuple[dict[str, Any], str]] = []
    for row in rows:
        message = orjson.loads(row["raw"])
        found: list[Identifier] = []
        for item in rules.in_message(message):
            if isinstance(item, RefusedIdentifier):
                graph.refused[(item.type, item.raw, item.reason)] += 1
            elif item not in found:
                found.append(item)
        for identifier in found:
            _sight(graph, identifier, row["timestamp"])
            if identifier.type == USER_ID:
                known_user_ids.add(identifier.value)
        if row["type"] == "alias" and row.get("previous_id"):
            aliases.append((row, str(row["previous_id"])))
        anchor = min(found, key=lambda i: (_PRIORITY_HINT.get(i.type, 9), i.value), default=None)
        for other in found:
            if other != anchor and anchor is not None:
                graph.edges.append(_edge(anchor, other, row))
    # An alias's previousId is an earlier user id when one was seen, else an anonymous id.
    for row, previous in aliases:
        target = rules.normalise(USER_ID, row.get("user_id") or orjson.loads(row["raw"]).get("userId"))
        kind = USER_ID if previous in known_user_ids else ANONYMOUS_ID
        source = rules.normalise(kind, previous)
        if isinstance(source, Identifier) and isinstance(target, Identifier) and source != target:
            _sight(graph, source, row["timestamp"])
            graph.edges.append(_edge(source, target, row))
        elif isinstance(source, RefusedIdentifier):
            graph.refused[(source.type, source.raw, source.reason)] += 1
    return graph


_PRIORITY_HINT = {kind: rank for rank, kind in enumerate(DEFAULT_PRIORITY)}


def _sight(graph: GraphInput, identifier: Identifier, at: datetime) -> None:
    sighting = graph.seen.get(identifier)
    if sighting is None:
        graph.seen[identifier] = Sighting(at, at, 1)
    else:
        sighting.first_seen = min(sighting.first_seen, at)
        sighting.last_seen = max(sighting.last_seen, at)
        sighting.messages += 1


def _edge(a: Identifier, b: Identifier, row: dict[str, Any]) -> Edge:
    a, b = sorted((a, b))
    return Edge(a, b, row["type"], row["source_id"], row["message_id"], row["seq"], row["timestamp"])


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


def _broken_limit(a: dict[str, int], b: dict[str, int], limits: dict[str, int]) -> str | None:
    for kind, limit in limits.items():
        together = a.get(kind, 0) + b.get(kind, 0)
        if together > limit:
            return f"a profile may hold at most {limit} {kind} (would hold {together})"
    return None


def profile_id_for(anchor: Identifier) -> str:
    """The id of the profile anchored at ``anchor`` (stable across rebuilds)."""
    return "prof_" + hashlib.sha256(str(anchor).encode()).hexdigest()[:16]


def identifier_rows(graph: GraphInput, resolution: Resolution) -> Iterator[dict[str, Any]]:
    for identifier, sighting in graph.seen.items():
        yield {
            "identifier_type": identifier.type,
            "identifier_value": identifier.value,
            "profile_id": resolution.profile_of[identifier],
            "first_seen": sighting.first_seen,
            "last_seen": sighting.last_seen,
            "messages": sighting.messages,
        }


IDENTIFIERS_SCHEMA = pa.schema(
    [
        ("identifier_type", pa.string()),
        ("identifier_value", pa.string()),
        ("profile_id", pa.string()),
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
    ]
)


def edge_rows(resolution: Resolution) -> Iterator[dict[str, Any]]:
    for edge, state, reason in resolution.edge_status:
        yield {
            "edge_id": edge.edge_id,
            "a_type": edge.a.type,
            "a_value": edge.a.value,
            "b_type": edge.b.type,
            "b_value": edge.b.value,
            "kind": edge.kind,
            "source_id": edge.source_id,
            "message_id": edge.message_id,
            "seq": edge.seq,
            "timestamp": edge.timestamp,
            "status": state,
            "reason": reason,
            "weight": edge.weight,
        }
