"""Building the identity graph from the event log, storing it, and reading it back.

The graph is built from the event log (``resolve``: incremental, or whole with
``full``) and stored in derived tables, changed in one transaction:

``identity_identifiers``  every identifier with its profile, first and last sighting
``identity_edges``        every link with its message, source, time and outcome
``identity_refused``      raw values refused as identifiers, with why and how often
``identity_redirects``    profile ids that disappeared in a merge, and where they went
``profile_dirty``         profiles changed since the last profile build

and one table of records people made, only ever appended to:

``identity_removals``     identifier pairs split apart (``patron identity split``), kept
                          so that no replayed or new message links them again
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from patron.collect.timestamps import utc_now
from patron.facts import FACTS, EventFacts
from patron.identity.components import (
    EDGE_INPUT_SCHEMA,
    SEEN_SCHEMA,
    edges_to_table,
    first_per_pair_table,
    merge_sightings,
    resolve_tables,
)
from patron.identity.engine_resolve import WORK_TABLES, resolve_in_engine
from patron.identity.exceptions import IdentityError, NotResolved, UnknownProfile
from patron.identity.extraction import LINKS, MAPPING, SEEN, GraphTables, read_graph, read_graph_in_engine
from patron.identity.graph import (
    LINKED,
    REFUSED,
    MergeRules,
)
from patron.identity.identifiers import Identifier, IdentifierRules
from patron.identity.probable import LINKING_STATUSES, PROBABLE, linking_edges, merge_run
from patron.identity.probable import SCHEMA as PROBABLE_SCHEMA
from patron.store.base import Append, Change, Drop, Replace, ReplaceRows, Store

IDENTIFIERS = "identity_identifiers"
EDGES = "identity_edges"
REFUSED_VALUES = "identity_refused"
REDIRECTS = "identity_redirects"
REMOVALS = "identity_removals"
#: Profile ids whose identifiers or events changed since the last profile build.
DIRTY = "profile_dirty"
#: Meta keys: the last event resolved, the rules it was resolved under, and an id that
#: changes with every full resolve (a profile build after one rebuilds everything).
#: A full resolve in the engine: the new identifiers, written before the stored ones are
#: replaced (retired profile ids are found by comparing them); and every work table.
_NEW_IDENTIFIERS = "identity_work_identifiers"
ENGINE_WORK = (_NEW_IDENTIFIERS, SEEN, LINKS)
_SEQ = "identity_seq"
_RULES = "identity_rules"
_PROBABLE_AT = "identity_probable_links_at"
GENERATION = "identity_generation"
DIRTY_SCHEMA = pa.schema([("profile_id", pa.string()), ("change", pa.string())])
#: How a dirty profile changed, which decides how the next build brings it up to date:
#: ``stable`` kept every identifier it had (identifiers never seen before may have joined
#: it; a new profile has only those), so its old events are still its own and only new
#: ones need adding; ``recompute``: anything else (merged, split, retired ids), computed
#: again from all its events.
STABLE, RECOMPUTE = "stable", "recompute"
_KEYS_SCHEMA = pa.schema([("t", pa.string()), ("v", pa.string())])

_REFUSED_SCHEMA = pa.schema(
    [
        ("identifier_type", pa.string()),
        ("raw", pa.string()),
        ("reason", pa.string()),
        ("messages", pa.int64()),
    ]
)
_REDIRECTS_SCHEMA = pa.schema(
    [("old_profile_id", pa.string()), ("profile_id", pa.string()), ("redirected_at", pa.timestamp("us"))]
)
_REMOVALS_SCHEMA = pa.schema(
    [
        ("removal_id", pa.string()),
        ("a_type", pa.string()),
        ("a_value", pa.string()),
        ("b_type", pa.string()),
        ("b_value", pa.string()),
        ("profile_id", pa.string()),
        ("reason", pa.string()),
        ("created_at", pa.timestamp("us")),
    ]
)


def _changed_profiles(before: pa.Table, after: pa.Table) -> pa.Table:
    """How each profile of re-resolved clusters changed (see :data:`STABLE`): ``before``
    and ``after`` are those clusters' identifier rows, stored and newly resolved."""

    def owners(rows: pa.Table) -> dict[tuple[str, str], str]:
        columns = (rows[c].to_pylist() for c in ("identifier_type", "identifier_value", "profile_id"))
        return {(t, v): p for t, v, p in zip(*columns, strict=True)}

    old, new = owners(before), owners(after)
    change: dict[str, str] = {}
    for key, profile in new.items():
        if old.get(key, profile) != profile:  # came from another profile
            change[profile] = RECOMPUTE
        else:  # never seen before, or still here
            change.setdefault(profile, STABLE)
    for key, profile in old.items():
        if new.get(key) != profile:  # lost an identifier, or retired
            change[profile] = RECOMPUTE
    rows = sorted(change.items())
    return pa.Table.from_pylist([{"profile_id": p, "change": c} for p, c in rows], schema=DIRTY_SCHEMA)


def _refused_table(*counts: dict[tuple[str, str, str], int]) -> pa.Table:
    total: dict[tuple[str, str, str], int] = defaultdict(int)
    for part in counts:
        for key, n in part.items():
            total[key] += n
    return pa.Table.from_pylist(
        [
            {"identifier_type": kind, "raw": raw, "reason": reason, "messages": n}
            for (kind, raw, reason), n in sorted(total.items())
        ],
        schema=_REFUSED_SCHEMA,
    )


@dataclass(frozen=True)
class ResolveReport:
    mode: str
    """``full`` (the whole log) or ``incremental`` (events since the last resolve)."""
    events: int
    """Events read."""
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
class SplitReport:
    """What a split removed and which profiles the identifiers ended in."""

    profile_id: str
    removal_id: str
    pairs_removed: int
    profiles: dict[str, list[str]]
    """Profile id -> its identifiers (``type:value``), for every identifier of the old profile."""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PreviewReport:
    """How profiles would change under other merge rules (nothing is written)."""

    profiles_now: int
    profiles_after: int
    profiles_merged: int
    """Profiles of today that would be merged into another."""
    profiles_split: int
    """Profiles of today whose identifiers would be spread over several profiles."""
    edges_refused_after: int

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

    def __init__(
        self, store: Store, identifier_rules: IdentifierRules, merge_rules: MergeRules, facts: EventFacts
    ) -> None:
        self.store = store
        self.facts = facts
        self.identifier_rules = identifier_rules
        self.merge_rules = merge_rules
        self.in_engine = store.graph_in_engine
        """Whether a full resolve keeps the graph in the engine (engine_resolve.py); the
        store's preference unless set (tests set it to compare both paths)."""

    def resolve(self, *, full: bool = False) -> ResolveReport:
        """:meth:`update`, then the graph's counts (what ``patron identity resolve`` prints)."""
        started = time.perf_counter()
        mode, events = self.update(full=full)
        return self._report(mode, events, started)

    def update(self, *, full: bool = False) -> tuple[str, int]:
        """Bring the graph up to date with the event log and store it atomically; returns
        ``("full" | "incremental", events read)``.

        Incremental by default: only events stored since the last resolve are read, and
        only the clusters they touch (see :func:`~patron.identity.graph.clusters`) are
        resolved again, which gives what a full rebuild would. A full rebuild runs when
        asked (``full``), on first use, and when the identifier or merge rules changed;
        splits and erasures make one themselves. Probable links found, accepted or
        rejected since the last resolve count as changes to the clusters of their ends.
        """
        self.facts.refresh()
        top = self.facts.watermark()
        since = self.store.get_meta(_SEQ)
        rules_key = self._rules_key()
        if (
            full
            or since is None
            or self.store.get_meta(_RULES) != rules_key
            or not self.store.has_table(IDENTIFIERS)
        ):
            return self._full(top, rules_key)
        return self._incremental(int(since), top)

    def watermark(self) -> int | None:
        """The last ``seq`` the graph has resolved (``None`` before the first resolve)."""
        value = self.store.get_meta(_SEQ)
        return None if value is None else int(value)

    def _rules_key(self) -> str:
        return hashlib.sha256(f"{self.identifier_rules!r}|{self.merge_rules!r}".encode()).hexdigest()[:16]

    def _full(self, top: int | None, rules_key: str) -> tuple[str, int]:
        now = utc_now()
        facts = self.store.table(FACTS)
        if self.store.get_meta(_RULES) != rules_key:
            self.store.write([Drop(MAPPING)])  # values normalised under other rules
        if self.in_engine:
            graph_changes, refused_counts = self._full_in_engine(facts)
        else:
            graph = self._whole_graph(facts)
            identifiers, edges = resolve_tables(graph.seen, graph.edges, self.merge_rules, self._removed())
            retired = self._retired(
                ibis.memtable(identifiers.select(["identifier_type", "identifier_value", "profile_id"]))
            )
            current = set(identifiers["profile_id"].unique().to_pylist())
            redirects = self._redirects(retired, current.intersection)
            graph_changes = [
                Replace(IDENTIFIERS, identifiers),
                Replace(EDGES, edges),
                Replace(REDIRECTS, redirects),
            ]
            refused_counts = graph.refused
        generation = hashlib.sha256(f"{utc_now().isoformat()}|{top}".encode()).hexdigest()[:12]
        self.store.write(
            [
                *graph_changes,
                Replace(REFUSED_VALUES, _refused_table(refused_counts)),
                Replace(DIRTY, DIRTY_SCHEMA.empty_table()),
                *(Drop(name) for name in (*ENGINE_WORK, *WORK_TABLES)),
            ],
            meta={
                _SEQ: str(top if top is not None else -1),
                _RULES: rules_key,
                GENERATION: generation,
                _PROBABLE_AT: now.isoformat(),
            },
        )
        return "full", int(self.store.execute(facts.count()))

    def _full_in_engine(self, facts: Any) -> tuple[list[Change], dict[tuple[str, str, str], int]]:
        """The whole graph resolved without leaving the engine (engine_resolve.py): the
        changes that store it, and the refused values' counts."""
        graph = read_graph_in_engine(self.store, self.identifier_rules, facts)
        seen = self.store.table(graph.seen)
        probable = self._probable_edges(lambda ends: self._present_in(seen, ends))
        if probable is not None:
            self.store.write([Append(graph.edges, probable)])
        identifiers, edges = resolve_in_engine(
            self.store, seen, self.store.table(graph.edges), self.merge_rules, self._removed()
        )
        self.store.write([Replace(_NEW_IDENTIFIERS, identifiers)])
        new = self.store.table(_NEW_IDENTIFIERS)
        retired = self._retired(new.select("identifier_type", "identifier_value", "profile_id"))

        def current(ids: set[str]) -> set[str]:
            wanted = ibis.memtable(pa.table({"p": pa.array(sorted(ids), pa.string())}))
            hits = new.semi_join(wanted, new.profile_id == wanted.p).select("profile_id").distinct()
            return set(self.store.to_pyarrow(hits).column(0).to_pylist())

        redirects = self._redirects(retired, current)
        changes: list[Change] = [
            Replace(IDENTIFIERS, new), Replace(EDGES, edges), Replace(REDIRECTS, redirects)
        ]  # fmt: skip
        return changes, graph.refused

    def _whole_graph(self, facts: Any) -> GraphTables:
        """The graph of the whole log, with the links of the probabilistic pass."""
        graph = read_graph(self.store, self.identifier_rules, facts)
        graph.edges = self._with_probable(graph.seen, graph.edges)
        return graph

    def _with_probable(self, seen: pa.Table, edges: pa.Table) -> pa.Table:
        """``edges`` and the links of the probabilistic pass between identifiers of ``seen``."""

        def present(ends: set[Identifier]) -> set[Identifier]:
            keys = pa.array([f"{i.type}\x1f{i.value}" for i in ends], pa.string())
            found = seen.filter(
                pc.is_in(
                    pc.binary_join_element_wise(seen["identifier_type"], seen["identifier_value"], "\x1f"),
                    value_set=keys,
                )
            )
            return {
                Identifier(t, v)
                for t, v in zip(*(found[c].to_pylist() for c in SEEN_SCHEMA.names[:2]), strict=True)
            }

        probable = self._probable_edges(present)
        return edges if probable is None else pa.concat_tables([edges, probable])

    def _present_in(self, seen: ir.Table, ends: set[Identifier]) -> set[Identifier]:
        """Which of ``ends`` the engine's table ``seen`` holds."""
        wanted = ibis.memtable(
            pa.table({"t": [i.type for i in ends], "v": [i.value for i in ends]}, schema=_KEYS_SCHEMA)
        )
        found = seen.semi_join(wanted, [seen.identifier_type == wanted.t, seen.identifier_value == wanted.v])
        rows = self.store.to_pyarrow(found.select("identifier_type", "identifier_value"))
        return {
            Identifier(t, v) for t, v in zip(*(rows[c].to_pylist() for c in rows.column_names), strict=True)
        }

    def _probable_edges(self, present: Callable[[set[Identifier]], set[Identifier]]) -> pa.Table | None:
        """The links of the probabilistic pass whose both ends ``present`` finds in the
        graph (``EDGE_INPUT_SCHEMA``), or ``None`` when there are none."""
        probable = [r for r in self.probable_links() if r["status"] in LINKING_STATUSES]
        if not probable:
            return None
        ends = {Identifier(r[f"{side}_type"], r[f"{side}_value"]) for r in probable for side in "ab"}
        return edges_to_table(linking_edges(probable, present(ends)))

    def _incremental(self, since: int, top: int | None) -> tuple[str, int]:
        now = utc_now()
        facts = self.store.table(FACTS)
        relinked = self._probable_changed_since(self.store.get_meta(_PROBABLE_AT))
        if (top is None or top <= since) and not relinked:
            return "incremental", 0
        events = 0
        delta = GraphTables(SEEN_SCHEMA.empty_table(), EDGE_INPUT_SCHEMA.empty_table())
        if top is not None and top > since:
            events = int(self.store.execute(facts.filter(facts.seq > since).count()))
            delta = read_graph(self.store, self.identifier_rules, facts, since=since)
        # Clusters of new events, and of both ends of probable links matched, accepted or
        # rejected since the last resolve.
        touched = pa.concat_tables(
            [
                delta.seen.select(["identifier_type", "identifier_value"]).rename_columns(["t", "v"]),
                delta.edges.select(["a_type", "a_value"]).rename_columns(["t", "v"]),
                delta.edges.select(["b_type", "b_value"]).rename_columns(["t", "v"]),
                pa.table(
                    {"t": [i.type for i in relinked], "v": [i.value for i in relinked]}, schema=_KEYS_SCHEMA
                ),
            ]
        )
        changes: list[Change] = []
        if delta.refused:
            changes.append(Replace(REFUSED_VALUES, _refused_table(self._stored_refused(), delta.refused)))
        if touched.num_rows:
            changes += self._resolve_clusters(delta, touched)
        meta = {_PROBABLE_AT: now.isoformat()}
        if top is not None:
            meta[_SEQ] = str(max(top, since))
        self.store.write(changes, meta=meta)
        return "incremental", events

    def _probable_changed_since(self, when: str | None) -> set[Identifier]:
        """Both ends of every probable link found or decided after ``when``."""
        if when is None:
            return set()
        since = datetime.fromisoformat(when)
        ends: set[Identifier] = set()
        for row in self.probable_links():
            changed = max(row["matched_at"], row["decided_at"] or row["matched_at"])
            if changed >= since:
                ends |= {Identifier(row["a_type"], row["a_value"]), Identifier(row["b_type"], row["b_value"])}
        return ends

    def _resolve_clusters(self, delta: GraphTables, touched: pa.Table) -> list[Change]:
        """Resolve again every cluster ``touched`` identifiers (``t``, ``v``) belong to,
        with their stored identifiers and edges and the new ones (``delta``); the changes
        that replace those clusters."""
        table = self.store.table(IDENTIFIERS)
        keys = ibis.memtable(touched)
        hit = table.semi_join(keys, [table.identifier_type == keys.t, table.identifier_value == keys.v])
        old_clusters = self.store.to_pyarrow(hit.select("cluster").distinct())
        wanted = ibis.memtable(old_clusters.rename_columns(["c"]))
        members = self.store.to_pyarrow(table.semi_join(wanted, table.cluster == wanted.c))
        stored = self.store.table(EDGES)
        # Links of the probabilistic pass are taken from their current state, below.
        stored = stored.filter(stored.kind != "probabilistic").semi_join(wanted, stored.cluster == wanted.c)
        seen = merge_sightings(members.select(SEEN_SCHEMA.names).cast(SEEN_SCHEMA), delta.seen)
        # A pair keeps the first message that linked it (a late event may be older).
        edges = first_per_pair_table(
            pa.concat_tables(
                [
                    self.store.to_pyarrow(stored.select(EDGE_INPUT_SCHEMA.names)).cast(EDGE_INPUT_SCHEMA),
                    delta.edges,
                ]
            )
        )
        identifiers, edges = resolve_tables(
            seen, self._with_probable(seen, edges), self.merge_rules, self._removed()
        )
        current = set(identifiers["profile_id"].to_pylist())
        retired = self._retired(
            ibis.memtable(identifiers.select(["identifier_type", "identifier_value", "profile_id"]))
        )
        redirects = self._redirects(retired, current.intersection)
        return [
            ReplaceRows(
                IDENTIFIERS, ("cluster",), identifiers, delete=old_clusters.rename_columns(["cluster"])
            ),
            ReplaceRows(EDGES, ("cluster",), edges, delete=old_clusters.rename_columns(["cluster"])),
            Replace(REDIRECTS, redirects),
            *self._dirty_changes(_changed_profiles(members, identifiers)),
        ]

    def _dirty_changes(self, dirty: pa.Table) -> list[Change]:
        """Append to the dirty list (a list written before it said how profiles changed
        is kept, every profile in it to be computed again)."""
        if self.store.has_table(DIRTY) and "change" not in self.store.table(DIRTY).columns:
            earlier = self.store.to_pyarrow(self.store.table(DIRTY).select("profile_id"))
            kept = earlier.append_column("change", pa.array([RECOMPUTE] * earlier.num_rows, pa.string()))
            return [Replace(DIRTY, pa.concat_tables([kept, dirty]))]
        return [Append(DIRTY, dirty)]

    def _report(self, mode: str, events: int, started: float) -> ResolveReport:
        table = self.store.table(IDENTIFIERS)
        edges = self.store.table(EDGES)
        by_status = self.store.to_pyarrow(edges.group_by("status").aggregate(n=edges.count())).to_pylist()
        counts = {r["status"]: r["n"] for r in by_status}
        return ResolveReport(
            mode=mode,
            events=events,
            identifiers=int(self.store.execute(table.count())),
            profiles=int(self.store.execute(table.profile_id.nunique())),
            edges_linked=int(counts.get(LINKED, 0)),
            edges_refused=int(counts.get(REFUSED, 0)),
            values_refused=int(self.store.execute(self.store.table(REFUSED_VALUES).count())),
            redirected=int(self.store.execute(self.store.table(REDIRECTS).count())),
            seconds=round(time.perf_counter() - started, 3),
        )

    def _stored_refused(self) -> dict[tuple[str, str, str], int]:
        if not self.store.has_table(REFUSED_VALUES):
            return {}
        rows = self.store.to_pyarrow(self.store.table(REFUSED_VALUES)).to_pylist()
        return {(r["identifier_type"], r["raw"], r["reason"]): r["messages"] for r in rows}

    def _retired(self, identifiers: ir.Table) -> dict[str, str]:
        """Profile ids of the stored graph that ``identifiers`` (a new graph: type, value,
        profile id) no longer has, each with the profile now holding its identifiers
        (computed in the engine)."""
        if not self.store.has_table(IDENTIFIERS):
            return {}
        old = self.store.table(IDENTIFIERS)
        new = identifiers.select(
            t=identifiers.identifier_type, v=identifiers.identifier_value, p=identifiers.profile_id
        )
        current = new.select(kept=new.p).distinct()
        joined = old.join(new, [old.identifier_type == new.t, old.identifier_value == new.v])
        retired = joined.anti_join(current, joined.profile_id == current.kept)
        moved = retired.group_by(old_id=retired.profile_id).aggregate(new_id=retired.p.min())
        rows = self.store.to_pyarrow(moved)
        return dict(zip(rows.column("old_id").to_pylist(), rows.column("new_id").to_pylist(), strict=True))

    def _redirects(self, moved: dict[str, str], current: Callable[[set[str]], set[str]]) -> pa.Table:
        """Earlier redirects, plus ``moved`` (retired profile id -> where its identifiers
        went); an id that is a profile again (``current(ids)`` says which) stops
        redirecting."""
        now = utc_now()
        earlier = (
            self.store.to_pyarrow(self.store.table(REDIRECTS)).to_pylist()
            if self.store.has_table(REDIRECTS)
            else []
        )
        again = current({r["old_profile_id"] for r in earlier}) if earlier else set()
        rows = [r for r in earlier if r["old_profile_id"] not in again]
        # Chains collapse: an id redirected earlier to a profile retired now follows it.
        for r in rows:
            r["profile_id"] = moved.get(r["profile_id"], r["profile_id"])
        rows += [
            {"old_profile_id": o, "profile_id": n, "redirected_at": now} for o, n in sorted(moved.items())
        ]
        return pa.Table.from_pylist(rows, schema=_REDIRECTS_SCHEMA)

    def _removed(self) -> dict[tuple[Identifier, Identifier], str]:
        if not self.store.has_table(REMOVALS):
            return {}
        removed: dict[tuple[Identifier, Identifier], str] = {}
        for row in self.store.to_pyarrow(self.store.table(REMOVALS)).to_pylist():
            a, b = sorted((Identifier(row["a_type"], row["a_value"]), Identifier(row["b_type"], row["b_value"])))
            when = row["created_at"]
            removed[(a, b)] = f"split apart by {row['removal_id']} at {when:%Y-%m-%d %H:%M}: {row['reason']}"
        return removed

    def split(
        self, key: str, *, edge_id: str | None = None, identifier: str | None = None, reason: str = ""
    ) -> SplitReport:
        """Undo a link: remove one edge's pair of identifiers, or detach one identifier
        from every other identifier of its profile; then rebuild the graph.

        The removal is stored, so replaying the same messages, or new messages linking
        the same identifiers, does not join them again. Events, traits and everything
        derived from identifiers follow the identifiers into their new profiles.
        """
        if (edge_id is None) == (identifier is None):
            raise IdentityError("give exactly one of --edge EDGE_ID or --identifier TYPE:VALUE")
        profile = self.profile_id(key)
        explanation = self.explain(profile)
        members = [Identifier(m["identifier_type"], m["identifier_value"]) for m in explanation.identifiers]
        if edge_id is not None:
            edges = self.store.table(EDGES)
            found = self.store.to_pyarrow(edges.filter(edges.edge_id == edge_id)).to_pylist()
            if not found:
                raise IdentityError(
                    f"no link {edge_id!r}; `patron identity explain {profile}` lists its links"
                )
            a = Identifier(found[0]["a_type"], found[0]["a_value"])
            b = Identifier(found[0]["b_type"], found[0]["b_value"])
            if a not in members or b not in members:
                raise IdentityError(f"link {edge_id} does not join identifiers of profile {profile}")
            pairs = [(a, b)]
        else:
            assert identifier is not None
            target = self._identifier_of(identifier, members)
            pairs = [tuple(sorted((target, other))) for other in members if other != target]  # type: ignore[misc]
            if not pairs:
                raise IdentityError(
                    f"{identifier} is the only identifier of profile {profile}; nothing to split"
                )
        now = utc_now()
        removal_id = (
            "split_" + hashlib.sha256(f"{profile}|{pairs}|{now.isoformat()}".encode()).hexdigest()[:12]
        )
        rows = [
            {
                "removal_id": removal_id,
                "a_type": a.type,
                "a_value": a.value,
                "b_type": b.type,
                "b_value": b.value,
                "profile_id": profile,
                "reason": reason or "split by hand",
                "created_at": now,
            }
            for a, b in pairs
        ]
        self.store.append_table(REMOVALS, pa.Table.from_pylist(rows, schema=_REMOVALS_SCHEMA))
        self.update(full=True)
        table = self._identifiers()
        keys = [f"{m.type}\x1f{m.value}" for m in members]
        after = self.store.to_pyarrow(
            table.filter((table.identifier_type + "\x1f" + table.identifier_value).isin(keys))
        ).to_pylist()
        profiles: dict[str, list[str]] = {}
        for row in sorted(
            after, key=lambda r: (r["profile_id"], r["identifier_type"], r["identifier_value"])
        ):
            profiles.setdefault(row["profile_id"], []).append(
                f"{row['identifier_type']}:{row['identifier_value']}"
            )
        return SplitReport(profile, removal_id, len(pairs), profiles)

    @staticmethod
    def _identifier_of(text: str, members: list[Identifier]) -> Identifier:
        for member in members:
            if text in (str(member), member.value):
                return member
        kind, _, value = text.partition(":")
        for member in members:
            if member.type == kind and member.value == value.strip().lower():
                return member
        raise IdentityError(
            f"{text!r} is not an identifier of this profile; `patron identity explain` lists them"
        )

    def preview(self, rules: MergeRules) -> PreviewReport:
        """Resolve under other merge rules without writing: how many profiles would merge or split."""
        current = {(r["identifier_type"], r["identifier_value"]): r["profile_id"] for r in self.clusters()}
        self.facts.refresh()
        graph = self._whole_graph(self.store.table(FACTS))
        identifiers, edges = resolve_tables(graph.seen, graph.edges, rules, self._removed())
        after = dict(
            zip(
                zip(
                    identifiers["identifier_type"].to_pylist(),
                    identifiers["identifier_value"].to_pylist(),
                    strict=True,
                ),
                identifiers["profile_id"].to_pylist(),
                strict=True,
            )
        )
        now_to_after: dict[str, set[str]] = defaultdict(set)
        after_to_now: dict[str, set[str]] = defaultdict(set)
        for key, old in current.items():
            new = after.get(key)
            if new is not None:
                now_to_after[old].add(new)
                after_to_now[new].add(old)
        merged = sum(len(olds) - 1 for olds in after_to_now.values() if len(olds) > 1)
        split = sum(1 for news in now_to_after.values() if len(news) > 1)
        states = edges["status"].to_pylist()
        return PreviewReport(
            profiles_now=len(set(current.values())),
            profiles_after=len(set(after.values())),
            profiles_merged=merged,
            profiles_split=split,
            edges_refused_after=states.count(REFUSED),
        )

    # -- probable links (the probabilistic pass) ------------------------------------

    def probable_links(self, status: str | None = None) -> list[dict[str, Any]]:
        if not self.store.has_table(PROBABLE):
            return []
        table = self.store.table(PROBABLE)
        if status is not None:
            table = table.filter(table.status == status)
        return self.store.to_pyarrow(table.order_by(ibis.desc("match_probability"))).to_pylist()

    def anchors(self, profiles: list[str] | None = None) -> dict[str, Identifier]:
        """Each profile's anchor (of ``profiles``, or of all): its first-seen identifier,
        the one its id is named after."""
        table = self._identifiers()
        if profiles is not None:
            wanted = ibis.memtable(pa.table({"p": pa.array(sorted(set(profiles)), pa.string())}))
            table = table.semi_join(wanted, table.profile_id == wanted.p)
        rows = self.store.to_pyarrow(
            table.select("profile_id", "identifier_type", "identifier_value", "first_seen")
        )
        best: dict[str, tuple[Any, ...]] = {}
        for profile, kind, value, first in zip(
            *(
                rows[c].to_pylist()
                for c in ("profile_id", "identifier_type", "identifier_value", "first_seen")
            ),
            strict=True,
        ):
            key = (first, self.merge_rules.rank(kind), kind, value)
            if profile not in best or key < best[profile]:
                best[profile] = key
        return {profile: Identifier(key[2], key[3]) for profile, key in best.items()}

    def add_probable(self, pairs: pa.Table) -> tuple[str, int]:
        """Store a matching run's pairs (``record_id`` = profile id) as probable links,
        keeping every earlier link and decision; returns the run id and how many are new."""
        now = utc_now()
        run_id = "match_" + hashlib.sha256(now.isoformat().encode()).hexdigest()[:12]
        previous = self.probable_links()
        ends = pairs.column("record_id_l").to_pylist() + pairs.column("record_id_r").to_pylist()
        merged = merge_run(previous, pairs, self.anchors(ends), run_id, now)
        self.store.write([Replace(PROBABLE, merged)])
        return run_id, merged.num_rows - len(previous)

    def decide(self, pair_ids: list[str], *, accept: bool) -> int:
        """Accept or reject probable links awaiting review; returns how many were decided."""
        rows = self.probable_links()
        wanted = set(pair_ids)
        unknown = wanted - {r["pair_id"] for r in rows}
        if unknown:
            raise IdentityError(
                f"no probable link {sorted(unknown)[0]!r}; `patron identity review` lists them"
            )
        now = utc_now()
        decided = 0
        for row in rows:
            if row["pair_id"] in wanted:
                row["status"] = "accepted" if accept else "rejected"
                row["decided_at"] = now
                decided += 1
        self.store.write([Replace(PROBABLE, pa.Table.from_pylist(rows, schema=PROBABLE_SCHEMA))])
        return decided

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
            hit = self.store.to_pyarrow(
                redirects.filter(redirects.old_profile_id == key).limit(1)
            ).to_pylist()
            if hit:
                return str(hit[0]["profile_id"])
        kind, sep, value = key.partition(":")
        if sep and not kind.startswith("prof_"):
            if kind == "external":  # external:<kind>:<value>
                sub, _, value = value.partition(":")
                kind = f"external:{sub}"
            # Written as a person would (" Ann@Shop.com", "(415) 555-2671"): the same
            # normalisation as when the identifier was stored.
            normalised = self.identifier_rules.normalise(kind, value)
            if isinstance(normalised, Identifier):
                value = normalised.value
            condition = (table.identifier_type == kind) & (table.identifier_value == value)
        else:
            condition = table.identifier_value == key
        found = (
            self.store.to_pyarrow(table.filter(condition).select("profile_id").distinct())
            .column(0)
            .to_pylist()
        )
        if len(found) == 1:
            return str(found[0])
        raise UnknownProfile(key)

    def explain(self, key: str) -> Explanation:
        profile = self.profile_id(key)
        table = self._identifiers()
        members = self.store.to_pyarrow(
            table.filter(table.profile_id == profile).order_by(
                ["first_seen", "identifier_type", "identifier_value"]
            )
        ).to_pylist()
        edges = self.store.table(EDGES)
        keys = [f"{m['identifier_type']}\x1f{m['identifier_value']}" for m in members]
        if not keys:
            return Explanation(profile, [], [], [])
        touches_a = (edges.a_type + "\x1f" + edges.a_value).isin(keys)
        touches_b = (edges.b_type + "\x1f" + edges.b_value).isin(keys)
        linked = edges.filter((edges.status == LINKED) & touches_a & touches_b).order_by(["timestamp", "seq"])
        refused = edges.filter((edges.status == REFUSED) & (touches_a | touches_b)).order_by(
            ["timestamp", "seq"]
        )
        return Explanation(
            profile_id=profile,
            identifiers=members,
            links=self.store.to_pyarrow(linked).to_pylist(),
            refused=self.store.to_pyarrow(refused).to_pylist(),
        )
