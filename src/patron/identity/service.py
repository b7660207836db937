"""Building the identity graph from the event log, storing it, and reading it back.

The graph is rebuilt whole from the event log (``resolve``) and stored in derived
tables, replaced in one transaction:

``identity_identifiers``  every identifier with its profile, first and last sighting
``identity_edges``        every link with its message, source, time and outcome
``identity_refused``      raw values refused as identifiers, with why and how often
``identity_redirects``    profile ids that disappeared in a merge, and where they went
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from patron.collect.timestamps import utc_now
from patron.identity.exceptions import NotResolved, UnknownProfile
from patron.identity.graph import (
    EDGES_SCHEMA,
    IDENTIFIERS_SCHEMA,
    LINKED,
    REFUSED,
    MergeRules,
    edge_rows,
    identifier_rows,
    read_messages,
    resolve,
)
from patron.identity.identifiers import IdentifierRules
from patron.store.base import Store

IDENTIFIERS = "identity_identifiers"
EDGES = "identity_edges"
REFUSED_VALUES = "identity_refused"
REDIRECTS = "identity_redirects"

_REFUSED_SCHEMA = pa.schema(
    [("identifier_type", pa.string()), ("raw", pa.string()), ("reason", pa.string()), ("messages", pa.int64())]
)
_REDIRECTS_SCHEMA = pa.schema(
    [("old_profile_id", pa.string()), ("profile_id", pa.string()), ("redirected_at", pa.timestamp("us"))]
)
_EVENT_COLUMNS = ("seq", "source_id", "message_id", "type", "user_id", "previous_id", "timestamp", "raw")


@dataclass(frozen=True)
class ResolveReport:
    events: int
    identifiers: int
    profiles: int
    edges_linked: int
    edges_refused: int
    values_refused: int
    redirected: int
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Explanation:
    """Why a profile is what it is: its identifiers and the links that joined them."""

    profile_id: str
    identifiers: list[dict[str, Any]]
    links: list[dict[str, Any]]
    """The ``linked`` edges, oldest first: the chain that made the profile."""
    refused: list[dict[str, Any]]
    """Links to this profile's identifiers that the merge rules refused."""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class IdentityGraph:
    """Identity resolution over a store (``workspace.identity``)."""

    def __init__(self, store: Store, identifier_rules: IdentifierRules, merge_rules: MergeRules) -> None:
        self.store = store
        self.identifier_rules = identifier_rules
        self.merge_rules = merge_rules

    def resolve(self) -> ResolveReport:
        """Rebuild the graph from the whole event log and store it atomically."""
        started = time.perf_counter()
        events = self.store.events()
        table = self.store.to_pyarrow(events.select(*_EVENT_COLUMNS).order_by("seq"))
        graph = read_messages(_rows(table), self.identifier_rules)
        resolution = resolve(graph, self.merge_rules)
        identifiers = pa.Table.from_pylist(list(identifier_rows(graph, resolution)), schema=IDENTIFIERS_SCHEMA)
        edges = pa.Table.from_pylist(list(edge_rows(resolution)), schema=EDGES_SCHEMA)
        refused = pa.Table.from_pylist(
            [
                {"identifier_type": kind, "raw": raw, "reason": reason, "messages": n}
                for (kind, raw, reason), n in sorted(graph.refused.items())
            ],
            schema=_REFUSED_SCHEMA,
        )
        redirects = self._redirects(resolution.profile_of)
        self.store.replace_tables(
            {IDENTIFIERS: identifiers, EDGES: edges, REFUSED_VALUES: refused, REDIRECTS: redirects}
        )
        states = [state for _, state, _ in resolution.edge_status]
        return ResolveReport(
            events=table.num_rows,
            identifiers=identifiers.num_rows,
            profiles=len(set(resolution.profile_of.values())),
            edges_linked=states.count(LINKED),
            edges_refused=states.count(REFUSED),
            values_refused=refused.num_rows,
            redirected=redirects.num_rows,
            seconds=round(time.perf_counter() - started, 3),
        )

    def _redirects(self, profile_of: dict[Any, str]) -> pa.Table:
        """Earlier redirects, plus one for each profile id that this build retired."""
        if not self.store.has_table(IDENTIFIERS):
            return _REDIRECTS_SCHEMA.empty_table()
        now = utc_now()
        previous = self.store.to_pyarrow(self.store.table(IDENTIFIERS)).to_pylist()
        current_ids = set(profile_of.values())
        now_of = {(i.type, i.value): p for i, p in profile_of.items()}
        moved: dict[str, str] = {}
        for row in previous:
            old = row["profile_id"]
            if old in current_ids or old in moved:
                continue
            profile = now_of.get((row["identifier_type"], row["identifier_value"]))
            if profile is not None:
                moved[old] = profile
        earlier = (
            self.store.to_pyarrow(self.store.table(REDIRECTS)).to_pylist() if self.store.has_table(REDIRECTS) else []
        )
        rows = [r for r in earlier if r["old_profile_id"] not in current_ids]
        # Chains collapse: an id redirected earlier to a profile retired now follows it.
        for r in rows:
            r["profile_id"] = moved.get(r["profile_id"], r["profile_id"])
        rows += [{"old_profile_id": o, "profile_id": n, "redirected_at": now} for o, n in sorted(moved.items())]
        return pa.Table.from_pylist(rows, schema=_REDIRECTS_SCHEMA)

    # -- reading -----------------------------------------------------------------

    def _identifiers(self) -> Any:
        if not self.store.has_table(IDENTIFIERS):
            raise NotResolved()
        return self.store.table(IDENTIFIERS)

    def clusters(self) -> list[dict[str, Any]]:
        """Every identifier with its profile: ``identifier_type, identifier_value, profile_id``."""
        table = self._identifiers()
        expr = table.select("identifier_type", "identifier_value", "profile_id").order_by(
            ["profile_id", "identifier_type", "identifier_value"]
        )
        return self.store.to_pyarrow(expr).to_pylist()

    def profile_id(self, key: str) -> str:
        """The current profile for a profile id (old ids follow their redirect), or for an
        identifier written ``type:value`` (``email:ann@shop.com``) or as a bare value."""
        table = self._identifiers()
        exists = self.store.to_pyarrow(table.filter(table.profile_id == key).select("profile_id").limit(1))
        if exists.num_rows:
            return key
        if self.store.has_table(REDIRECTS):
            redirects = self.store.table(REDIRECTS)
            hit = self.store.to_pyarrow(redirects.filter(redirects.old_profile_id == key).limit(1)).to_pylist()
            if hit:
                return str(hit[0]["profile_id"])
        kind, sep, value = key.partition(":")
        if sep and not kind.startswith("prof_"):
            if kind == "external":  # external:<kind>:<value>
                sub, _, value = value.partition(":")
                kind = f"external:{sub}"
            condition = (table.identifier_type == kind) & (table.identifier_value == value)
            if kind == "email":
                condition = (table.identifier_type == kind) & (table.identifier_value == value.strip().lower())
        else:
            condition = table.identifier_value == key
        found = self.store.to_pyarrow(table.filter(condition).select("profile_id").distinct()).column(0).to_pylist()
        if len(found) == 1:
            return str(found[0])
        raise UnknownProfile(key)

    def explain(self, key: str) -> Explanation:
        profile = self.profile_id(key)
        table = self._identifiers()
        members = self.store.to_pyarrow(
            table.filter(table.profile_id == profile).order_by(["first_seen", "identifier_type", "identifier_value"])
        ).to_pylist()
        edges = self.store.table(EDGES)
        keys = [f"{m['identifier_type']}\x1f{m['identifier_value']}" for m in members]
        if not keys:
            return Explanation(profile, [], [], [])
        touches_a = (edges.a_type + "\x1f" + edges.a_value).isin(keys)
        touches_b = (edges.b_type + "\x1f" + edges.b_value).isin(keys)
        linked = edges.filter((edges.status == LINKED) & touches_a & touches_b).order_by(["timestamp", "seq"])
        refused = edges.filter((edges.status == REFUSED) & (touches_a | touches_b)).order_by(["timestamp", "seq"])
        return Explanation(
            profile_id=profile,
            identifiers=members,
            links=self.store.to_pyarrow(linked).to_pylist(),
            refused=self.store.to_pyarrow(refused).to_pylist(),
        )


def _rows(table: pa.Table) -> Iterator[dict[str, Any]]:
    for batch in table.to_batches(max_chunksize=50_000):
        yield from batch.to_pylist()
