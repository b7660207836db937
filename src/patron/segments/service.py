"""Segments: saved queries and frozen lists of profiles, with the history of who was in
each when (``workspace.segments``).

Tables (all derived, rebuilt from the event log except the definitions people wrote):

``segment_definitions``  name, kind (dynamic/static), query, description, origin, ...
``segment_members``      segment, profile_id, entered_at: who is in each segment now
``segment_history``      segment, profile_id, change (enter/exit), at, cause, run_id

A refresh evaluates dynamic segments and writes, in one transaction, every entry and
exit it finds to the history and the new members to ``segment_members``; so ``who was
in the segment at T`` is the latest history row per profile at or before T.

**Incremental refresh.** The profile build keeps a change feed (profiles/service.py:
``profile_changes``, the profiles each build touched). A refresh evaluates each segment
over only the profiles changed since the last refresh and compares with their current
membership; the result is what a full evaluation gives for them. Conditions on time
(``-30d``, ``within 7d``) also change as the clock moves, with no new event: a segment
whose query depends on the clock is evaluated over every profile when its last full
evaluation is older than ``time_refresh`` (an hour by default). ``full=True`` evaluates
every segment over every profile.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import orjson
import pyarrow as pa

from patron.collect.timestamps import utc_now
from patron.facts import FACTS
from patron.identity.identifiers import EMAIL, USER_ID, Identifier
from patron.identity.service import IDENTIFIERS, REDIRECTS
from patron.profiles.attribution import carrying, profile_events
from patron.profiles.exceptions import ProfilesNotBuilt
from patron.profiles.service import BUILD, CHANGES, COMPUTED, FULL_BUILD, TRAITS, Profiles
from patron.segments import ast
from patron.segments.attributes import ANNIVERSARY_NAMES, AttributeInfo, Catalogue, json_kind, kind_of
from patron.segments.compiler import (
    TRAIT_PREFIX,
    Compiler,
    Requirements,
    Sources,
    property_column,
    requirements,
    segment_references,
)
from patron.segments.dates import window_start
from patron.segments.exceptions import (
    SegmentCycle,
    SegmentError,
    SegmentExists,
    SegmentInUse,
    SegmentQueryError,
    UnknownSegment,
)
from patron.segments.properties import PropertyIndex, pairs_of
from patron.segments.rfm import RfmCuts, rfm_cuts, rfm_scores
from patron.store.base import Append, Change, DeleteRows, Drop, Replace, ReplaceRows, Store

DEFINITIONS = "segment_definitions"
MEMBERS = "segment_members"
HISTORY = "segment_history"
_W_EVENTS = "segment_work_events"
_W_SCOPED_EVENTS = "segment_work_scoped_events"
_W_SCOPE = "segment_work_scope"
_W_NEW = "segment_work_new"
_W_PROFILES = "segment_work_profiles"
_W_CHANGED = "segment_work_changed"
#: Meta key prefix: the RFM cuts (rfm.py) a segment's members were evaluated with.
_CUTS_PREFIX = "segment_rfm_cuts:"

DYNAMIC, STATIC = "dynamic", "static"
ENTER, EXIT = "enter", "exit"

DEFINITIONS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("kind", pa.string()),
        ("query", pa.string()),
        ("description", pa.string()),
        ("origin", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("updated_at", pa.timestamp("us")),
        ("refreshed_at", pa.timestamp("us")),
        ("full_refresh_at", pa.timestamp("us")),
        ("depends_on", pa.string()),
        ("time_dependent", pa.bool_()),
        ("profiles_build", pa.int64()),
    ]
)
MEMBERS_SCHEMA = pa.schema([("segment", pa.string()), ("profile_id", pa.string()), ("entered_at", pa.timestamp("us"))])
HISTORY_SCHEMA = pa.schema(
    [
        ("segment", pa.string()),
        ("profile_id", pa.string()),
        ("change", pa.string()),
        ("at", pa.timestamp("us")),
        ("cause", pa.string()),
        ("run_id", pa.string()),
    ]
)
_SCOPE_SCHEMA = pa.schema([("profile_id", pa.string())])
_STAGED_SCHEMA = pa.schema([("segment", pa.string()), ("profile_id", pa.string())])
_CHANGED_SCHEMA = pa.schema([("segment", pa.string()), ("profile_id", pa.string()), ("change", pa.string())])

#: RFM attributes (rfm.py), computed at evaluation time from the profile row.
RFM_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "recency_days": ("number", "Days since the last order (RFM)"),
    "frequency": ("number", "Orders (RFM)"),
    "monetary": ("number", "Revenue (RFM)"),
    "r_score": ("number", "Recency score 1-5 (5: most recent)"),
    "f_score": ("number", "Frequency score 1-5"),
    "m_score": ("number", "Monetary score 1-5"),
    "rfm_score": ("string", "The three scores, such as '545'"),
    "rfm_group": ("string", "Champions, Loyal Customers, ..., Lost, or Prospects (no orders)"),
}


@dataclass(frozen=True)
class Segment:
    """A segment's definition and size."""

    name: str
    kind: str
    query: str | None
    description: str
    origin: str
    created_at: datetime
    updated_at: datetime
    refreshed_at: datetime | None
    depends_on: list[str]
    time_dependent: bool
    size: int = 0

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RefreshReport:
    mode: str
    """``full``, ``incremental`` or ``none`` (nothing to do)."""
    run_id: str
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per segment: mode, entered, exited, size."""
    changed_profiles: int | None = None
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Preview:
    count: int
    profiles: int
    share: float
    sample: list[dict[str, Any]]
    warnings: list[str]
    time_dependent: bool

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


#: Below both, a segment is too small to act on (a campaign to it teaches nothing).
SMALL_COUNT = 100
SMALL_SHARE = 0.01
#: At or above, a segment holds nearly everyone: it does not segment.
BROAD_SHARE = 0.95
#: Two segments sharing this much of the smaller one are almost the same people.
OVERLAP_SHARE = 0.9


def size_warnings(count: int, profiles: int) -> list[str]:
    """What to tell a marketer about a segment of ``count`` of ``profiles``."""
    if profiles == 0:
        return ["there are no profiles yet: build them with `patron profiles build`"]
    share = count / profiles
    if count == 0:
        return ["matches no one: check the values against `patron segments attributes`"]
    if count < SMALL_COUNT and share < SMALL_SHARE:
        return [f"only {count:,} profiles ({share:.2%}): probably too small to act on or to learn from"]
    if share >= BROAD_SHARE:
        return [f"{share:.0%} of all profiles: nearly everyone, so it hardly segments"]
    return []


class Segments:
    """Dynamic and static segments over the profiles (``workspace.segments``)."""

    def __init__(
        self,
        store: Store,
        profiles: Profiles,
        *,
        clock: Callable[[], datetime] = utc_now,
        as_of: datetime | None = None,
        time_refresh: timedelta = timedelta(hours=1),
        anniversaries: frozenset[str] = ANNIVERSARY_NAMES,
    ) -> None:
        self.store = store
        self.profiles = profiles
        self.clock = clock
        self.as_of = as_of
        """A fixed evaluation instant (``PATRON_SEGMENTS_AS_OF``): data from the past."""
        self.time_refresh = time_refresh
        self.anniversaries = anniversaries
        self._catalogue: tuple[int, Catalogue] | None = None
        self._rfm_cuts: RfmCuts | None = None
        self.properties = PropertyIndex(store)

    # -- the language -------------------------------------------------------------------

    def parse(self, query: str) -> ast.Condition:
        from patron.segments.language import parse

        return parse(query)

    def catalogue(self) -> Catalogue:
        """Every attribute a query can name, with its kind (read again only after the
        profiles changed: the kinds of traits come from a pass over their values)."""
        if not self.store.has_table(COMPUTED):
            raise ProfilesNotBuilt()
        build = self._build()
        if self._catalogue is not None and self._catalogue[0] == build:
            return self._catalogue[1]
        catalogue = self._read_catalogue()
        self._catalogue = (build, catalogue)
        return catalogue

    def _read_catalogue(self) -> Catalogue:
        computed = self.store.table(COMPUTED)
        described = {t.name: t.description for t in self.profiles.computed}
        attributes = {
            name: AttributeInfo(name, kind_of(dtype), "computed", described.get(name, ""))
            for name, dtype in computed.schema().items()
            if not name.startswith("_") and name != "profile_id"
        }
        for name, (kind, description) in RFM_ATTRIBUTES.items():
            attributes.setdefault(name, AttributeInfo(name, kind, "rfm", description))
        traits = self.store.table(TRAITS)
        kinds = traits.group_by(traits.trait, kind=json_kind(traits.value)).aggregate(n=traits.count())
        best: dict[str, tuple[int, str]] = {}
        for row in self.store.to_pyarrow(kinds).to_pylist():
            held = best.get(row["trait"])
            if held is None or (row["n"], row["kind"]) > held:
                best[row["trait"]] = (row["n"], row["kind"])
        trait_info = {name: AttributeInfo(name, kind, "trait") for name, (_, kind) in best.items()}
        return Catalogue(attributes, trait_info)

    def _now(self, as_of: datetime | date | None = None) -> datetime:
        if as_of is None:
            as_of = self.as_of
        if isinstance(as_of, datetime):
            return as_of
        if isinstance(as_of, date):
            return datetime.combine(as_of, datetime.max.time())  # a day: as of its end
        return self.clock()

    def check(self, query: str, catalogue: Catalogue | None = None) -> tuple[ast.Condition, Requirements]:
        """Parse and check a query; what evaluating it needs."""
        condition = self.parse(query)
        needs = requirements(condition, catalogue or self.catalogue(), self.anniversaries)
        references = list(segment_references(condition))
        known = self._definitions() if references else {}
        for reference in references:
            if reference.name not in known:
                raise SegmentQueryError(
                    f"in_segment names no segment {reference.name!r}", column=reference.position.column,
                    line=reference.position.line, token=reference.name,
                )  # fmt: skip
        return condition, needs

    # -- reading ------------------------------------------------------------------------

    def _definitions(self) -> dict[str, dict[str, Any]]:
        if not self.store.has_table(DEFINITIONS):
            return {}
        rows = self.store.to_pyarrow(self.store.table(DEFINITIONS)).to_pylist()
        return {row["name"]: row for row in rows}

    def _definition(self, name: str) -> dict[str, Any]:
        found = self._definitions().get(name)
        if found is None:
            raise UnknownSegment(name)
        return found

    def _sizes(self) -> dict[str, int]:
        if not self.store.has_table(MEMBERS):
            return {}
        members = self.store.table(MEMBERS)
        counts = members.group_by("segment").aggregate(n=members.count())
        return {r["segment"]: int(r["n"]) for r in self.store.to_pyarrow(counts).to_pylist()}

    def all(self) -> list[Segment]:
        sizes = self._sizes()
        return [self._segment(row, sizes.get(name, 0)) for name, row in sorted(self._definitions().items())]

    def get(self, name: str) -> Segment:
        return self._segment(self._definition(name), self._sizes().get(name, 0))

    @staticmethod
    def _segment(row: dict[str, Any], size: int) -> Segment:
        return Segment(
            name=row["name"], kind=row["kind"], query=row["query"], description=row["description"] or "",
            origin=row["origin"], created_at=row["created_at"], updated_at=row["updated_at"],
            refreshed_at=row["refreshed_at"], depends_on=orjson.loads(row["depends_on"] or "[]"),
            time_dependent=bool(row["time_dependent"]), size=size,
        )  # fmt: skip

    def show(self, name: str) -> dict[str, Any]:
        """The definition, size, entries and exits so far, and what to watch out for."""
        segment = self.get(name)
        history = self.store.table(HISTORY)
        mine = history.filter(history.segment == name)
        changes = mine.group_by("change").aggregate(n=mine.count(), last=mine.at.max())
        counts = {r["change"]: r for r in self.store.to_pyarrow(changes).to_pylist()}
        profiles = int(self.store.execute(self.store.table(COMPUTED).count()))
        used_by = [d["name"] for d in self._definitions().values() if name in orjson.loads(d["depends_on"] or "[]")]
        return {
            **segment.as_json(),
            "profiles": profiles,
            "share": segment.size / profiles if profiles else 0.0,
            "entries": int(counts.get(ENTER, {}).get("n", 0)),
            "exits": int(counts.get(EXIT, {}).get("n", 0)),
            "last_change_at": max((r["last"] for r in counts.values()), default=None),
            "used_by": used_by,
            "warnings": size_warnings(segment.size, profiles),
        }

    def members(self, name: str, at: datetime | date | None = None, *, limit: int | None = None) -> pa.Table:
        """Who is in the segment (``profile_id``, ``email``, ``entered_at``), now or at a
        past instant (a date means the end of that day, UTC)."""
        if at is None:  # a deleted segment has no members now, but may have had then
            self._definition(name)
        members = self._members_at(name, at)
        emails = self._emails()
        joined = members.left_join(emails, members.profile_id == emails.e_profile)
        out = joined.select("profile_id", email=joined.email, entered_at=joined.entered_at).order_by("profile_id")
        if limit is not None:
            out = out.limit(limit)
        return self.store.to_pyarrow(out)

    def _members_at(self, name: str, at: datetime | date | None) -> ir.Table:
        if at is None:
            members = self.store.table(MEMBERS)
            return members.filter(members.segment == name).select("profile_id", "entered_at")
        if not self.store.has_table(HISTORY):
            raise UnknownSegment(name)
        instant = self._now(at)
        history = self.store.table(HISTORY)
        mine = history.filter(history.segment == name, history.at <= instant)
        if not self.store.execute(history.filter(history.segment == name).count()):
            raise UnknownSegment(name)
        order = ibis.window(group_by=mine.profile_id, order_by=[ibis.desc(mine.at)])
        ranked = mine.mutate(n=ibis.row_number().over(order))
        latest = ranked.filter(ranked.n == 0, ranked.change == ENTER)
        return latest.select("profile_id", entered_at=latest.at)

    def _emails(self) -> ir.Table:
        identifiers = self.store.table(IDENTIFIERS)
        emails = identifiers.filter(identifiers.identifier_type == EMAIL)
        return emails.group_by(e_profile=emails.profile_id).aggregate(email=emails.identifier_value.min())

    # -- evaluating ---------------------------------------------------------------------

    def _profile_rows(self, needs: Requirements, as_of: datetime, cuts: RfmCuts | None = None) -> ir.Table:
        computed = self.store.table(COMPUTED)
        row = computed.select(*(c for c in computed.columns if not c.startswith("_")))
        if not needs.rfm:
            return row
        scores = rfm_scores(computed, as_of, cuts)
        extra = [c for c in scores.columns if c != "profile_id" and c not in row.columns]
        scores = scores.select(_rp=scores.profile_id, **{c: scores[c] for c in extra})
        joined = row.left_join(scores, row.profile_id == scores._rp)
        return joined.select(*row.columns, *extra)

    def _events_expression(self, needs: Requirements, as_of: datetime, scope: ir.Table | None = None) -> ir.Table:
        """The attributed events with the columns ``needs`` names (of ``scope``'s
        profiles only, when given), messages' properties read once per event: of the
        event types the conditions name, each from as far back as one of them reads."""
        facts = self.store.table(FACTS)
        facts = facts.filter(_needed_events(facts, needs, as_of))
        identifiers = self.store.table(IDENTIFIERS)
        if scope is not None:
            members = identifiers.semi_join(scope, identifiers.profile_id == scope.profile_id)
            hits = carrying(facts, members)
            facts = facts.semi_join(hits, facts.seq == hits.seq)
        attributed = profile_events(facts, identifiers)
        if scope is not None:
            attributed = attributed.semi_join(scope, attributed.profile_id == scope.profile_id)
        fields = sorted(needs.event_fields - {"timestamp", "event"})
        events = attributed.select("profile_id", "seq", "timestamp", "event", *fields)
        if not needs.properties:
            return events
        paths = {property_column(p): p for p in sorted(needs.properties)}
        read = self.properties.values(needs.property_events, paths)
        # Only the events whose messages are read meet the join; the rest (most) pass by.
        named = events.event.isin(sorted(needs.property_events))
        reading = events.filter(named)
        joined = reading.left_join(read, reading.seq == read._ps).select(*events.columns, *paths)
        rest = events.filter(~named).mutate(**{c: ibis.null(dt.string) for c in paths})
        return ibis.union(joined, rest, distinct=False)

    def preview(self, query: str, *, as_of: datetime | date | None = None, sample: int = 10) -> Preview:
        """How many profiles a query matches now, a sample of them, and warnings."""
        self._fresh()
        catalogue = self.catalogue()
        condition, needs = self.check(query, catalogue)
        now = self._now(as_of)
        sources = self._sources(needs, now, events=self._events_expression(needs, now) if needs.events else None)
        matching = Compiler(catalogue, now, self.anniversaries).matching(condition, sources)
        count = int(self.store.execute(matching.count()))
        profiles = int(self.store.execute(self.store.table(COMPUTED).count()))
        emails = self._emails()
        shown = matching.left_join(emails, matching.profile_id == emails.e_profile)
        rows = self.store.to_pyarrow(shown.select("profile_id", "email").order_by("profile_id").limit(sample)).to_pylist()
        return Preview(count, profiles, count / profiles if profiles else 0.0, rows,
                       size_warnings(count, profiles), needs.time_dependent)  # fmt: skip

    def _index_properties(self, needs: Requirements) -> None:
        """Bring the message properties ``needs`` reads into the index (properties.py)."""
        if needs.properties:
            self.properties.update(pairs_of(needs.property_events, needs.properties))

    def _cuts(self, needs: Requirements) -> RfmCuts | None:
        """Where the RFM scores begin over every purchaser now, when ``needs`` reads RFM
        attributes (read once per operation: :meth:`_fresh` forgets them)."""
        if not needs.rfm:
            return None
        if self._rfm_cuts is None:
            self._rfm_cuts = rfm_cuts(self.store, self.store.table(COMPUTED))
        return self._rfm_cuts

    def _fresh(self) -> None:
        """Forget what was read for the previous operation (the profiles may have changed
        since, by a build or an erasure)."""
        self._rfm_cuts = None

    def _cuts_meta(self, name: str, needs: Requirements) -> dict[str, str]:
        """The meta value recording the cuts a segment on RFM was evaluated with (what a
        later refresh compares the cuts of its time with)."""
        cuts = self._cuts(needs)
        return {} if cuts is None else {_CUTS_PREFIX + name: orjson.dumps(cuts.as_json()).decode()}

    def _evaluated_cuts(self, name: str) -> RfmCuts | None:
        saved = self.store.get_meta(_CUTS_PREFIX + name)
        return RfmCuts.from_json(orjson.loads(saved)) if saved else None

    def _sources(
        self, needs: Requirements, as_of: datetime, *, events: ir.Table | None, scope: ir.Table | None = None,
        members: Callable[[str], ir.Table] | None = None, profiles: ir.Table | None = None,
    ) -> Sources:  # fmt: skip
        """What a query reads: the profile rows (``profiles``, else made here), the
        traits, the events and each segment's members (``members``, else the stored)."""
        if profiles is None:
            profiles = self._profile_rows(needs, as_of, self._cuts(needs))
        traits = self.store.table(TRAITS)
        if scope is not None:
            profiles = profiles.semi_join(scope, profiles.profile_id == scope.profile_id)
            traits = traits.semi_join(scope, traits.profile_id == scope.profile_id)
        return Sources(profiles, traits, events,
                       members or (lambda name: self._members_of([name]).select("profile_id")))  # fmt: skip

    # -- writing ------------------------------------------------------------------------

    def _ensure_tables(self) -> list[Change]:
        return [
            Replace(name, schema.empty_table())
            for name, schema in ((DEFINITIONS, DEFINITIONS_SCHEMA), (MEMBERS, MEMBERS_SCHEMA), (HISTORY, HISTORY_SCHEMA))
            if not self.store.has_table(name)
        ]

    def _definition_row(self, row: dict[str, Any]) -> pa.Table:
        return pa.Table.from_pylist([row], schema=DEFINITIONS_SCHEMA)

    def create(
        self,
        name: str,
        query: str | None = None,
        *,
        static: bool = False,
        description: str = "",
        ids: Path | None = None,
        as_of: datetime | date | None = None,
        origin: str | None = None,
        profile_ids: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """Save a segment: dynamic (a query, evaluated now and on every refresh), static
        from a query (the matching profiles now, frozen), or static from a CSV file of
        profile ids, emails or user ids (``ids``). Returns the segment with warnings."""
        self._fresh()
        _check_name(name)
        if name in self._definitions():
            raise SegmentExists(name)
        given = sum(x is not None for x in (query, ids, profile_ids))
        if given != 1:
            raise SegmentError("give exactly one of a query (--where) or a file of ids (--ids)")
        if not self.store.has_table(COMPUTED):
            raise ProfilesNotBuilt()
        now = self.clock()
        depends: list[str] = []
        time_dependent = False
        unmatched: list[str] = []
        if query is not None:
            self._refuse_self_reference(name, query)
            condition, needs = self.check(query)
            depends = sorted(needs.segments)
            time_dependent = needs.time_dependent and not static
            kind = STATIC if static else DYNAMIC
        else:
            kind = STATIC
        row = {
            "name": name, "kind": kind, "query": query, "description": description,
            "origin": origin or ("query" if query is not None else "upload"), "created_at": now, "updated_at": now,
            "refreshed_at": now, "full_refresh_at": now, "depends_on": orjson.dumps(depends).decode(),
            "time_dependent": time_dependent, "profiles_build": self._build(),
        }  # fmt: skip
        run_id = _run_id()
        changes = self._ensure_tables()
        changes.append(ReplaceRows(DEFINITIONS, ("name",), self._definition_row(row)))
        meta: dict[str, str] = {}
        if query is not None:
            changes += self._evaluation(name, condition, needs, self._now(as_of), now, "created", run_id)
            meta = self._cuts_meta(name, needs)
        else:
            found, unmatched = (self._resolve_ids(ids) if ids is not None else (list(profile_ids or []), []))
            listed = ibis.memtable(pa.table({"profile_id": pa.array(sorted(set(found)), pa.string())}))
            changes += self._replace_members(name, listed, now, str(row["origin"]), run_id)
        self.store.write(changes, meta)
        shown = self.show(name)
        if unmatched:
            shown["unmatched"] = len(unmatched)
            shown["unmatched_sample"] = unmatched[:10]
            shown["warnings"].append(f"{len(unmatched):,} ids in the file match no profile")
        shown["warnings"] += self._overlap_warnings(name)
        return shown

    def _build(self) -> int:
        """The profile build (profiles/service.py ``BUILD``) the profiles are at now."""
        return int(self.store.get_meta(BUILD) or 0)

    def _refuse_self_reference(self, name: str, query: str) -> None:
        if any(r.name == name for r in segment_references(self.parse(query))):
            raise SegmentCycle([name, name])

    def update(self, name: str, *, query: str | None = None, description: str | None = None) -> dict[str, Any]:
        """Change a dynamic segment's query (evaluated again at once, over every profile;
        a query whose ``in_segment`` chain comes back to it is refused) or description."""
        self._fresh()
        row = dict(self._definition(name))
        now = self.clock()
        changes: list[Change] = []
        meta: dict[str, str] = {}
        if description is not None:
            row["description"] = description
        if query is not None:
            if row["kind"] != DYNAMIC:
                raise SegmentError(f"{name!r} is a static segment: its members are a frozen list; create a new one")
            self._refuse_self_reference(name, query)
            condition, needs = self.check(query)
            check_cycles(self._definitions(), name, sorted(needs.segments))
            row.update(query=query, depends_on=orjson.dumps(sorted(needs.segments)).decode(),
                       time_dependent=needs.time_dependent, refreshed_at=now, full_refresh_at=now,
                       profiles_build=self._build())  # fmt: skip
            changes += self._evaluation(name, condition, needs, self._now(), now, "redefined", _run_id())
            meta = self._cuts_meta(name, needs)
        row["updated_at"] = now
        changes.append(ReplaceRows(DEFINITIONS, ("name",), self._definition_row(row)))
        self.store.write(changes, meta)
        return self.show(name)

    def _evaluation(
        self, name: str, condition: ast.Condition, needs: Requirements, evaluated_at: datetime, now: datetime,
        cause: str, run_id: str,
    ) -> list[Change]:  # fmt: skip
        """The changes that evaluate one segment over every profile."""
        changes: list[Change] = []
        events = None
        self._index_properties(needs)
        if needs.events:
            events_expr = self._events_expression(needs, evaluated_at)
            changes.append(Replace(_W_EVENTS, events_expr, temporary=True))
            events = ibis.table(events_expr.schema(), name=_W_EVENTS)
        sources = self._sources(needs, evaluated_at, events=events)
        matching = Compiler(self.catalogue(), evaluated_at, self.anniversaries).matching(condition, sources)
        changes += self._replace_members(name, matching, now, cause, run_id)
        if events is not None:
            changes.append(Drop(_W_EVENTS))
        return changes

    def _membership_changes(
        self, staged: ir.Table, decided: ir.Table, causes: dict[str, str], now: datetime, run_id: str
    ) -> list[Change]:  # fmt: skip
        """Entries and exits that make the members being decided (``decided``: rows of
        ``segment_members`` with ``segment, profile_id``) equal ``staged`` (the same two
        columns): one comparison for every segment of a write, history first, then the
        members. ``causes`` maps each segment to the cause its rows record."""
        key = ("segment", "profile_id")
        # One full outer join finds both: a staged row no member matches enters, a member
        # no staged row matches exits (two anti-joins built a hash table each).
        new = staged.select(_ns=staged.segment, _np=staged.profile_id)
        old = decided.select(_os=decided.segment, _op=decided.profile_id)
        both = new.outer_join(old, [new._ns == old._os, new._np == old._op])
        found = both.filter(both._ns.isnull() | both._op.isnull())
        entering = found._op.isnull()
        differences = found.select(
            segment=ibis.ifelse(entering, found._ns, found._os), profile_id=ibis.ifelse(entering, found._np, found._op),
            change=ibis.ifelse(entering, ibis.literal(ENTER), ibis.literal(EXIT)),
        )  # fmt: skip
        changed = ibis.table(_CHANGED_SCHEMA, name=_W_CHANGED)
        at = ibis.literal(now, type=dt.timestamp)
        history = changed.select(
            "segment", "profile_id", "change", at=at, cause=_cause(changed.segment, causes), run_id=ibis.literal(run_id)
        )  # fmt: skip
        enters, exits = changed.filter(changed.change == ENTER), changed.filter(changed.change == EXIT)
        return [
            Replace(_W_CHANGED, differences, temporary=True),
            Append(HISTORY, history),
            DeleteRows(MEMBERS, key, exits.select(*key)),
            Append(MEMBERS, enters.select(*key, entered_at=at)),
            Drop(_W_CHANGED),
        ]

    def _members_of(self, names: Sequence[str]) -> ir.Table:
        """The current members (``segment, profile_id``) of the segments ``names``."""
        if not self.store.has_table(MEMBERS):
            return ibis.memtable(_STAGED_SCHEMA.empty_table())
        members = self.store.table(MEMBERS)
        return members.filter(members.segment.isin(list(names))).select("segment", "profile_id")

    def _replace_members(
        self, name: str, profile_ids: ir.Table | None, now: datetime, cause: str, run_id: str
    ) -> list[Change]:  # fmt: skip
        """The changes that make one segment's members exactly ``profile_ids`` (a table
        with ``profile_id``; ``None``: nobody)."""
        changes: list[Change] = []
        if profile_ids is None:
            staged = ibis.memtable(_STAGED_SCHEMA.empty_table())
        else:
            changes.append(Replace(_W_NEW, _staged_rows(name, profile_ids), temporary=True))
            staged = ibis.table(_STAGED_SCHEMA, name=_W_NEW)
        changes += self._membership_changes(staged, self._members_of([name]), {name: cause}, now, run_id)
        if profile_ids is not None:
            changes.append(Drop(_W_NEW))
        return changes

    def delete(self, name: str) -> int:
        """Remove a segment; its members exit (cause ``deleted``) so the history stays
        whole. Refused while another segment refers to it. Returns how many exited."""
        self._definition(name)
        users = [d["name"] for d in self._definitions().values() if name in orjson.loads(d["depends_on"] or "[]")]
        if users:
            raise SegmentInUse(name, sorted(users))
        size = self._sizes().get(name, 0)
        now = self.clock()
        changes = self._replace_members(name, None, now, "deleted", _run_id())
        keys = pa.table({"name": [name]})
        changes.append(DeleteRows(DEFINITIONS, ("name",), keys))
        self.store.write(changes)
        return size

    def refresh(
        self, names: Sequence[str] | None = None, *, full: bool = False, as_of: datetime | date | None = None,
        build: bool = True,
    ) -> RefreshReport:  # fmt: skip
        """Bring dynamic segments up to date (all, or ``names`` and what they use):
        incrementally over the profiles changed since the last refresh, or fully; static
        segments follow their members' merges. One transaction."""
        self._fresh()
        started = time.perf_counter()
        if build:
            self.profiles.build()
        run_id = _run_id()
        definitions = self._definitions()
        if not definitions:
            return RefreshReport("none", run_id, seconds=round(time.perf_counter() - started, 3))
        for name in names or ():
            if name not in definitions:
                raise UnknownSegment(name)
        order = _dependency_order(definitions, names)
        now = self.clock()
        evaluated_at = self._now(as_of)
        build_now = self._build()
        last_full = int(self.store.get_meta(FULL_BUILD) or 0)
        catalogue = self.catalogue()
        plans: list[tuple[str, dict[str, Any], ast.Condition, Requirements, bool]] = []
        since: int | None = None  # the oldest build an incremental evaluation starts from
        whole_names: set[str] = set()
        planned: set[str] = set()
        for name in order:
            row = definitions[name]
            if row["kind"] != DYNAMIC:
                continue
            condition, needs = requirements_of(self, row["query"], catalogue)
            seen = row["profiles_build"]
            stale_clock = row["time_dependent"] and (
                as_of is not None or row["full_refresh_at"] is None or now - row["full_refresh_at"] >= self.time_refresh
            )
            # A full profile build touches every profile: no list of changes covers it.
            whole = full or seen is None or last_full > seen or stale_clock or not self.store.has_table(CHANGES)
            used = orjson.loads(row["depends_on"] or "[]")
            if not whole and seen >= build_now and not any(u in planned for u in used):
                continue  # no profile changed since; neither the clock nor what it uses moved it
            # RFM scores rank each customer against all the others: a change to some moves
            # the scores of others, found from the cuts the segment was last evaluated
            # with (below; without them, everyone). A segment using one evaluated in full
            # this run may see unchanged profiles enter or leave it.
            whole = whole or (needs.rfm and self._evaluated_cuts(name) is None) or any(u in whole_names for u in used)
            if not whole:
                since = seen if since is None else min(since, seen)
            else:
                whole_names.add(name)
            plans.append((name, row, condition, needs, whole))
            planned.add(name)
        combined = Requirements()
        for _, _, _, needs, _ in plans:
            combined.update(needs)
        scope_rows: pa.Table | None = None
        if since is not None:
            feed = self.store.table(CHANGES)
            changed = feed.filter(feed.build > since).select("profile_id")
            moved = self._rfm_moved([(name, needs) for name, _, _, needs, whole in plans if needs.rfm and not whole])
            scope_rows = self.store.to_pyarrow(changed.union(moved) if moved is not None else changed.distinct())
        everything = all(whole for *_, whole in plans)
        changes = self._ensure_tables()
        report = RefreshReport(
            "none" if not plans else "full" if everything else "incremental", run_id,
            changed_profiles=None if scope_rows is None else scope_rows.num_rows,
        )  # fmt: skip
        self._index_properties(combined)
        events = scoped_events = None
        scope = None
        if scope_rows is not None and any(not whole for *_, whole in plans):
            changes.append(Replace(_W_SCOPE, scope_rows, temporary=True))
            scope = ibis.table(_SCOPE_SCHEMA, name=_W_SCOPE)
            if any(needs.events and not whole for *_, needs, whole in plans):
                expr = self._events_expression(combined, evaluated_at, scope)
                changes.append(Replace(_W_SCOPED_EVENTS, expr, temporary=True))
                scoped_events = ibis.table(expr.schema(), name=_W_SCOPED_EVENTS)
        if any(needs.events and whole for *_, needs, whole in plans):
            expr = self._events_expression(combined, evaluated_at)
            changes.append(Replace(_W_EVENTS, expr, temporary=True))
            events = ibis.table(expr.schema(), name=_W_EVENTS)
        compiler = Compiler(catalogue, evaluated_at, self.anniversaries)
        # Each segment's matching profiles (in a work table when other segments read them),
        # all compared with the members in one pass at the end.
        staged: dict[str, ir.Table] = {}
        partly = {name for name, *_, whole in plans if not whole}
        # The profile row, RFM scores and traits are made once for the segments evaluated
        # in full and once for those evaluated over the scope, when several read them
        # (RFM ranks every customer: a second at a million; traits pivot a large table).
        rows: dict[bool, ir.Table | None] = {}
        for whole in (True, False):
            work = f"{_W_PROFILES}_{'all' if whole else 'scope'}"
            expr = self._shared_rows([p[3] for p in plans if p[4] == whole], evaluated_at, compiler,
                                     None if whole else scope)  # fmt: skip
            rows[whole] = None if expr is None else ibis.table(expr.schema(), name=work)
            if expr is not None:
                changes.append(Replace(work, expr, temporary=True))

        def members_of(name: str) -> ir.Table:
            if name not in staged:
                return self._members_of([name]).select("profile_id")
            mine = staged[name].select("profile_id")
            if name in partly and scope is not None:  # outside the scope, the members stand
                kept = self._members_of([name]).select("profile_id")
                mine = ibis.union(mine, kept.anti_join(scope, kept.profile_id == scope.profile_id))
            return mine

        # The others go straight into the comparison (no work table written and read back).
        used = {u for *_, needs, _ in plans for u in needs.segments}
        for number, (name, row, condition, needs, whole) in enumerate(plans):
            sources = self._sources(needs, evaluated_at, events=events if whole else scoped_events,
                                    scope=None if whole else scope, members=members_of,
                                    profiles=rows[whole])  # fmt: skip
            matches = _staged_rows(name, compiler.matching(condition, sources))
            if name in used:  # read again by the segments using it: computed once
                work = f"{_W_NEW}_{number}"
                changes.append(Replace(work, matches, temporary=True))
                matches = ibis.table(_STAGED_SCHEMA, name=work)
            staged[name] = matches
            updated = dict(row, refreshed_at=now, full_refresh_at=now if whole else row["full_refresh_at"],
                           profiles_build=build_now)  # fmt: skip
            changes.append(ReplaceRows(DEFINITIONS, ("name",), self._definition_row(updated)))
            report.segments[name] = {"mode": "full" if whole else "incremental"}
        if staged:
            decided = self._members_of([n for n in staged if n not in partly])
            if partly and scope is not None:
                inside = self._members_of(sorted(partly))
                decided = ibis.union(decided, inside.semi_join(scope, inside.profile_id == scope.profile_id))
            causes = {name: "profile changed" if name in partly else "refresh" for name in staged}
            changes += self._membership_changes(ibis.union(*staged.values()), decided, causes, now, run_id)
            changes += [Drop(f"{_W_NEW}_{number}") for number, plan in enumerate(plans) if plan[0] in used]
        changes += [Drop(f"{_W_PROFILES}_{part}") for part in ("all", "scope")]
        changes += self._follow_merges(definitions, now, run_id)
        for name in (_W_EVENTS, _W_SCOPED_EVENTS, _W_SCOPE):
            changes.append(Drop(name))
        meta: dict[str, str] = {}
        for name, _, _, needs, _ in plans:
            meta |= self._cuts_meta(name, needs)
        self.store.write(changes, meta)
        self._report_counts(report, now)
        report.seconds = round(time.perf_counter() - started, 3)
        return report

    def _rfm_moved(self, evaluated: list[tuple[str, Requirements]]) -> ir.Table | None:
        """The profiles (``profile_id``) whose RFM scores differ from those the segments
        ``evaluated`` (name, needs) last saw with the same values: between a cut of then
        and one of now. ``None``: no cut moved."""
        if not evaluated:
            return None
        now = self._cuts(evaluated[0][1])
        assert now is not None
        computed = self.store.table(COMPUTED)
        tests = []
        for earlier in {self._evaluated_cuts(name) for name, _ in evaluated}:
            test = now.moved(earlier, computed) if earlier is not None else None
            if test is not None:
                tests.append(test)
        if not tests:
            return None
        return computed.filter(ibis.or_(*tests)).select("profile_id")

    def _shared_rows(
        self, readers: list[Requirements], as_of: datetime, compiler: Compiler, scope: ir.Table | None
    ) -> ir.Table | None:  # fmt: skip
        """The profile rows (of ``scope``, or all) with the columns, RFM scores and traits
        that ``readers`` name, when more than one of them reads RFM scores or traits."""
        if sum(needs.rfm or bool(needs.traits) for needs in readers) < 2:
            return None
        shared = Requirements()
        for needs in readers:
            shared.update(needs)
        expr = compiler.row(self._sources(shared, as_of, events=None, scope=scope), shared.traits)
        # Only the columns the queries name: the row has lists and text besides.
        return expr.select("profile_id", *(c for c in expr.columns if c in shared.columns or c.startswith(TRAIT_PREFIX)))

    def _follow_merges(self, definitions: dict[str, dict[str, Any]], now: datetime, run_id: str) -> list[Change]:
        """Static members whose profile was merged into another: the member becomes the
        profile it went into (an exit and an entry, cause ``profile merged``)."""
        statics = [n for n, d in definitions.items() if d["kind"] == STATIC]
        if not statics or not self.store.has_table(REDIRECTS) or not self.store.has_table(MEMBERS):
            return []
        members = self.store.table(MEMBERS)
        computed = self.store.table(COMPUTED)
        gone = members.filter(members.segment.isin(statics)).anti_join(computed, "profile_id")
        redirects = self.store.table(REDIRECTS)
        moved = gone.join(redirects, gone.profile_id == redirects.old_profile_id)
        rows = self.store.to_pyarrow(moved.select("segment", old=gone.profile_id, new=redirects.profile_id)).to_pylist()
        if not rows:
            return []
        # Decided: the members rows of the profiles involved (old and new); staged: the
        # same with each old profile replaced by the one it went into.
        moved_in = sorted({r["segment"] for r in rows})
        involved = sorted({r["old"] for r in rows} | {r["new"] for r in rows})
        decided = members.filter(members.segment.isin(moved_in), members.profile_id.isin(involved))
        now_in = {(r["segment"], r["profile_id"]) for r in self.store.to_pyarrow(decided.select("segment", "profile_id")).to_pylist()}
        kept = (now_in - {(r["segment"], r["old"]) for r in rows}) | {(r["segment"], r["new"]) for r in rows}
        staged = [{"segment": seg, "profile_id": pid} for seg, pid in sorted(kept)]
        table = pa.Table.from_pylist(staged, schema=_STAGED_SCHEMA)
        changes: list[Change] = [Replace(_W_NEW, table, temporary=True)]
        changes += self._membership_changes(ibis.table(_STAGED_SCHEMA, name=_W_NEW), decided.select("segment", "profile_id"),
                                            dict.fromkeys(moved_in, "profile merged"), now, run_id)  # fmt: skip
        changes.append(Drop(_W_NEW))
        return changes

    def _report_counts(self, report: RefreshReport, now: datetime) -> None:
        history = self.store.table(HISTORY)
        # The run's rows are the newest, all at ``now``: a filter on the time lets the
        # engine skip the older blocks of the growing history.
        mine = history.filter(history.at == ibis.literal(now, type=dt.timestamp), history.run_id == report.run_id)
        counts = self.store.to_pyarrow(mine.group_by(["segment", "change"]).aggregate(n=mine.count())).to_pylist()
        sizes = self._sizes()
        for row in counts:
            entry = report.segments.setdefault(row["segment"], {"mode": "merges"})
            entry["entered" if row["change"] == ENTER else "exited"] = int(row["n"])
        for name, entry in report.segments.items():
            entry.setdefault("entered", 0)
            entry.setdefault("exited", 0)
            entry["size"] = sizes.get(name, 0)

    # -- comparing ----------------------------------------------------------------------

    def overlap(self, a: str, b: str) -> dict[str, Any]:
        """How much two segments share: both, only each, and the Jaccard index."""
        for name in (a, b):
            self._definition(name)
        members = self.store.table(MEMBERS)
        left = members.filter(members.segment == a).select("profile_id")
        right = members.filter(members.segment == b).select(other=members.profile_id)
        both = int(self.store.execute(left.semi_join(right, left.profile_id == right.other).count()))
        sizes = self._sizes()
        size_a, size_b = sizes.get(a, 0), sizes.get(b, 0)
        union = size_a + size_b - both
        smaller = min(size_a, size_b)
        warnings = []
        if smaller and both / smaller >= OVERLAP_SHARE:
            warnings.append(
                f"{both / smaller:.0%} of the smaller segment is in the other: they are almost the same people"
            )
        return {
            "a": a, "b": b, "size_a": size_a, "size_b": size_b, "both": both, "only_a": size_a - both,
            "only_b": size_b - both, "jaccard": both / union if union else 0.0, "warnings": warnings,
        }  # fmt: skip

    def _overlap_warnings(self, name: str) -> list[str]:
        found = []
        for other in self._definitions():
            if other == name:
                continue
            result = self.overlap(name, other)
            smaller = min(result["size_a"], result["size_b"])
            if smaller and result["both"] / smaller >= OVERLAP_SHARE:
                found.append(f"{result['both'] / smaller:.0%} of the smaller of {name!r} and {other!r} is in both")
        return found

    def forget(self, profile_id: str) -> list[Change]:
        """The changes that remove an erased person from every segment and its history
        (their profile id and the ids merged into it), and the properties of their
        events from the index: a profiles erasure hook."""
        ids = {profile_id}
        if self.store.has_table(REDIRECTS):
            redirects = self.store.table(REDIRECTS)
            old = redirects.filter(redirects.profile_id == profile_id).select("old_profile_id")
            ids |= set(self.store.to_pyarrow(old)["old_profile_id"].to_pylist())
        keys = pa.table({"profile_id": pa.array(sorted(ids), pa.string())})
        changes: list[Change] = [
            DeleteRows(name, ("profile_id",), keys) for name in (MEMBERS, HISTORY) if self.store.has_table(name)
        ]
        identifiers = self.store.table(IDENTIFIERS)
        return changes + self.properties.forget(identifiers.filter(identifiers.profile_id == profile_id))

    # -- RFM and clusters ---------------------------------------------------------------

    def rfm(self, *, as_of: datetime | date | None = None) -> dict[str, Any]:
        """RFM group sizes, revenue shares and score thresholds (rfm.py)."""
        from patron.segments.rfm import rfm_summary

        if not self.store.has_table(COMPUTED):
            raise ProfilesNotBuilt()
        return rfm_summary(self.store, self.store.table(COMPUTED), self._now(as_of))

    def cluster(
        self, features: Sequence[str], *, k: int | None = None, seed: int = 0, prefix: str = "cluster",
        as_of: datetime | date | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """Cluster the profiles that have every feature (k-means, clustering.py) and save
        each cluster as a static segment ``PREFIX-1`` (the largest), ``PREFIX-2``, ...;
        the segments of an earlier run with the same prefix are replaced."""
        self._fresh()
        from patron.segments.clustering import fit_clusters

        if not features:
            raise SegmentError("name at least one feature, e.g. --features recency_days,frequency,monetary")
        _check_name(prefix)
        catalogue = self.catalogue()
        needs = Requirements()
        for feature in features:
            info = catalogue.lookup(feature)
            if info is None or info.source == "trait" or info.kind not in ("number", "boolean"):
                numeric = sorted(a.name for a in catalogue.all() if a.kind == "number" and a.source != "trait")
                raise SegmentError(f"{feature!r} is not a numeric attribute; choose from {', '.join(numeric)}")
            needs.rfm |= info.source == "rfm"
        row = self._profile_rows(needs, self._now(as_of), self._cuts(needs))
        complete = row.filter(*(row[f].notnull() for f in features)).select("profile_id", *features).order_by("profile_id")
        table = self.store.to_pyarrow(complete)
        money = [f for f in features if f in ("monetary", "total_revenue", "frequency", "order_count", "average_order_value")]
        result = fit_clusters(table, list(features), k=k, seed=seed, log=money)
        ids = table["profile_id"].to_pylist()
        for name, row_ in self._definitions().items():  # the previous run's clusters
            if row_["origin"] == f"cluster:{prefix}":
                self.delete(name)
        saved = []
        for index, (label, size) in enumerate(zip(result.names, result.sizes, strict=True)):
            segment = f"{prefix}-{index + 1}"
            if segment in self._definitions():
                raise SegmentExists(segment)
            members = [p for p, cluster in zip(ids, result.labels.tolist(), strict=True) if cluster == index]
            self.create(segment, profile_ids=members, description=label, origin=f"cluster:{prefix}")
            saved.append({"segment": segment, "name": label, "size": size, "center": result.centers[index]})
        return {**result.as_json(), "profiles": len(ids), "segments": saved}

    # -- static lists -------------------------------------------------------------------

    def _resolve_ids(self, path: Path) -> tuple[list[str], list[str]]:
        """Profiles for a CSV of ids: a column named profile_id, email, user_id or id
        (else the first column); each value a profile id (old ones follow their merge),
        an email (normalised as identity does) or a user id. Also the values that match
        nothing."""
        import pyarrow.csv as csv

        try:
            header = csv.read_csv(path, read_options=csv.ReadOptions(block_size=1 << 16)).schema.names
            # Every column as text: "007" is an id, not the number 7.
            table = csv.read_csv(path, convert_options=csv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False))  # fmt: skip
        except (OSError, pa.ArrowInvalid) as error:
            raise SegmentError(f"cannot read {path}: {error}") from None
        names = {c.lower().strip(): c for c in table.column_names}
        column = next((names[c] for c in ("profile_id", "email", "user_id", "id") if c in names), None)
        values = [str(v).strip() for v in (table[column] if column else table.column(0)).to_pylist() if v is not None]
        if column is None:  # no header we know: the first line is a value too
            values.insert(0, table.column_names[0].strip())
        values = [v for v in dict.fromkeys(values) if v]
        if not values:
            raise SegmentError(f"{path} lists no ids")
        rules = self.profiles.identity.identifier_rules
        keys: dict[str, str] = {}
        for value in values:
            if "@" in value:
                normal = rules.normalise(EMAIL, value)
                keys[value] = normal.value if isinstance(normal, Identifier) else value
            else:
                keys[value] = value
        wanted = pa.table({"raw": list(keys), "key": list(keys.values())})
        lookup = ibis.memtable(wanted)
        identifiers = self.store.table(IDENTIFIERS)
        by_identifier = lookup.join(
            identifiers,
            (lookup.key == identifiers.identifier_value) & identifiers.identifier_type.isin([EMAIL, USER_ID]),
        ).select("raw", "profile_id")
        by_profile = lookup.join(identifiers, lookup.key == identifiers.profile_id).select("raw", "profile_id")
        parts = [by_identifier, by_profile]
        if self.store.has_table(REDIRECTS):
            redirects = self.store.table(REDIRECTS)
            parts.append(lookup.join(redirects, lookup.key == redirects.old_profile_id).select("raw", "profile_id"))
        found = self.store.to_pyarrow(ibis.union(*parts, distinct=True)).to_pylist()
        matched = {r["raw"] for r in found}
        return sorted({r["profile_id"] for r in found}), [v for v in values if v not in matched]


def requirements_of(segments: Segments, query: str, catalogue: Catalogue) -> tuple[ast.Condition, Requirements]:
    """A stored query checked again (the attributes may have changed since it was saved)."""
    condition = segments.parse(query)
    return condition, requirements(condition, catalogue, segments.anniversaries)


def _dependency_order(definitions: dict[str, dict[str, Any]], names: Sequence[str] | None) -> list[str]:
    """Segments in an order where each comes after those it uses (with what the asked-for
    ones use)."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise SegmentCycle([*path, name])
        state[name] = "visiting"
        row = definitions.get(name)
        for used in orjson.loads(row["depends_on"] or "[]") if row else []:
            visit(used, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in names or sorted(definitions):
        visit(name, [])
    return order


def check_cycles(definitions: dict[str, dict[str, Any]], name: str, depends: list[str]) -> None:
    """Refuse a definition whose ``in_segment`` chain comes back to itself."""
    trial = dict(definitions)
    trial[name] = {"name": name, "depends_on": orjson.dumps(depends).decode()}
    _dependency_order(trial, [name])


_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _check_name(name: str) -> None:
    if not name or len(name) > 100 or not set(name) <= _NAME_CHARS or name[0] in "-.":
        raise SegmentError(
            f"segment name {name!r} must be 1-100 letters, digits, '-', '_' or '.', not starting with '-' or '.'"
        )


def _run_id() -> str:
    return "run_" + uuid.uuid4().hex[:16]


def _staged_rows(name: str, profile_ids: ir.Table) -> ir.Table:
    """A segment's matching profiles as rows of a staged membership (``segment, profile_id``)."""
    # Distinct already: a query's matches are rows of the profile table, a list is a set.
    return profile_ids.select(segment=ibis.literal(name, type=dt.string), profile_id=profile_ids.profile_id)


def _cause(segment: ir.StringColumn, causes: dict[str, str]) -> ir.StringValue:
    """The cause each segment's history rows record (one literal when all agree)."""
    by_cause: dict[str, list[str]] = {}
    for name, cause in causes.items():
        by_cause.setdefault(cause, []).append(name)
    if len(by_cause) == 1:
        return ibis.literal(next(iter(by_cause)), type=dt.string)
    (*rest, (last, _)) = sorted(by_cause.items())
    return ibis.cases(*((segment.isin(sorted(names)), cause) for cause, names in rest), else_=ibis.literal(last))


def _needed_events(facts: ir.Table, needs: Requirements, as_of: datetime) -> ir.BooleanValue:
    """The facts evaluation reads: of the event types ``needs`` names, the whole history
    of those some condition reads whole, and the rest from the start of their widest
    window (less a day: the compiler draws the exact line)."""
    whole = sorted(n for n, windows in needs.event_windows.items() if None in windows)
    test = facts.event.isin(whole) if whole else ibis.literal(False)
    for name in sorted(set(needs.event_windows) - set(whole)):
        earliest = min(window_start(w, as_of) for w in needs.event_windows[name] if w is not None)
        cut = ibis.literal(earliest - timedelta(days=1), type=dt.timestamp)
        test |= (facts.event == name) & (facts.timestamp >= cut)
    return test
