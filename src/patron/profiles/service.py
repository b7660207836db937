"""Building profiles (merged traits, computed traits) and reading the 360 view.

``build`` runs inside the engine: the attributed events, the trait merge and every
computed trait are Ibis expressions, materialised into two derived tables in one
transaction:

``profile_traits``    profile_id, trait, value (JSON text), source_id, message_id, updated_at
``profile_computed``  profile_id and one column per computed trait
``profile_consent_history``  profile_id, category, granted, changed_at, source_id, message_id
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from patron.collect.timestamps import utc_now
from patron.facts import FACTS
from patron.identity.identifiers import Identifier, IdentifierRules
from patron.identity.service import DIRTY, DIRTY_SCHEMA, GENERATION, IDENTIFIERS, RECOMPUTE, IdentityGraph
from patron.profiles.attribution import carrying, profile_events
from patron.profiles.computed import (
    DEFAULT_COMPUTED_TRAITS,
    LAST_EVENT,
    ComputedTrait,
    computed_traits,
    merge_computed,
)
from patron.profiles.consent import consent_changes_after, consent_history
from patron.profiles.erasure import ErasureReceipt, Tombstones, plan_erasure
from patron.profiles.exceptions import ProfilesNotBuilt
from patron.profiles.match_records import match_records
from patron.profiles.traits import merged_traits, newer_winners
from patron.store.base import Append, Change, DeleteRows, Drop, Replace, ReplaceRows, Store

if TYPE_CHECKING:
    from patron.identity.matching import MatchSettings

TRAITS = "profile_traits"
COMPUTED = "profile_computed"
CONSENT = "profile_consent_history"
_WORK = "profile_work_dirty"
_WORK_MERGING = "profile_work_merging"
_WORK_RECOMPUTE = "profile_work_recompute"
_NEW_EVENTS = "profile_work_new_events"
_CANDIDATES = "profile_work_candidates"
_ATTRIBUTED = "profile_work_attributed"
#: Meta keys: the identity generation and the declarations the profiles were built under.
_GENERATION = "profiles_identity_generation"
_FINGERPRINT = "profiles_fingerprint"
#: Meta key: the last event the profiles reflect (the graph's watermark at the build).
_SEQ = "profiles_seq"
#: The change feed later stages (segments) read to update only what changed: every
#: build that changed profiles gets the next number (meta ``BUILD``); an incremental one
#: lists the profiles it touched (new, changed, merged away) in ``CHANGES``; a full one
#: touches all, so it records its number as ``FULL_BUILD`` and empties the list.
CHANGES = "profile_changes"
CHANGES_SCHEMA = pa.schema([("build", pa.int64()), ("profile_id", pa.string())])
BUILD = "profiles_build"
FULL_BUILD = "profiles_full_build"


@dataclass(frozen=True)
class BuildReport:
    mode: str
    """``full`` (every profile) or ``incremental`` (only profiles that changed)."""
    profiles: int
    """Profiles in the store after the build."""
    rebuilt: int
    """Profiles computed by this build."""
    traits: int
    seconds: float
    merged: int = 0
    """Of ``rebuilt``: brought up to date from stored rows and new events only."""
    recomputed: int = 0
    """Of ``rebuilt``: computed from all their events."""

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class MatchReport:
    run_id: str
    records: int
    matched_pairs: int
    review_pairs: int
    new_links: int
    profiles_before: int
    profiles_after: int
    traits_compared: list[str]
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _carried(events: ir.Table, identifiers: ir.Table) -> ir.Table:
    """The graph's identifiers that ``events`` carry (a few per profile, not the whole
    graph): all that attributing those events needs."""
    values = ibis.union(*(events.select(v=events[c]) for c in ("user_id", "anonymous_id", "external_id")), distinct=True)
    return identifiers.semi_join(values, identifiers.identifier_value == values.v)


class Profiles:
    """The single customer view (``workspace.profiles``)."""

    def __init__(
        self,
        store: Store,
        identity: IdentityGraph,
        tombstones: Tombstones,
        computed: tuple[ComputedTrait, ...] = DEFAULT_COMPUTED_TRAITS,
        source_priority: Sequence[str] = (),
    ) -> None:
        self.store = store
        self.identity = identity
        self.tombstones = tombstones
        self.computed = computed
        self.source_priority = tuple(source_priority)
        self._built_under: str | None = None
        self.erasure_hooks: list[Callable[[str], list[Change]]] = []
        """Called with the erased profile's id: the changes that remove what later stages
        (which this layer does not know) hold about the person."""

    def build(self, *, resolve: bool = True, full: bool = False) -> BuildReport:
        """Resolve identities (unless told not to), then bring traits, computed traits and
        consent up to date with the events the graph has resolved.

        Incremental by default: only the profiles the resolves since the last build
        marked as changed are touched. Those that kept their identifiers and got only
        events not older than their latest one are brought up to date from their stored
        rows and the new events alone (each computed trait's ``merge``, see computed.py);
        the rest are computed again from all their events. Either way the result is what
        a full build gives. A full build runs when asked, on first use, after a full
        resolve, and when the declarations changed.
        """
        started = time.perf_counter()
        if resolve:
            self.identity.update(full=full)
        top = self.identity.watermark()
        facts = self.identity.facts.table()
        if top is not None:  # events stored after the last resolve wait for the next one
            facts = facts.filter(facts.seq <= top)
        identifiers = self.identity._identifiers()
        fingerprint = self._fingerprint(self.store.table(FACTS), identifiers)
        generation = self.store.get_meta(GENERATION) or ""
        since = self.store.get_meta(_SEQ)
        stale = (
            full
            or since is None
            or not self.store.has_table(COMPUTED)
            or self.store.get_meta(_GENERATION) != generation
            or self.store.get_meta(_FINGERPRINT) != fingerprint
        )
        meta = {_GENERATION: generation, _FINGERPRINT: fingerprint, _SEQ: str(top if top is not None else -1)}
        counts: dict[str, int] = {}
        build = int(self.store.get_meta(BUILD) or 0) + 1
        if stale:
            attributed = profile_events(facts, identifiers)
            self.store.write(
                [
                    Replace(TRAITS, merged_traits(attributed, self.source_priority)),
                    Replace(COMPUTED, computed_traits(attributed, self.computed)),
                    Replace(CONSENT, consent_history(attributed)),
                    Replace(DIRTY, DIRTY_SCHEMA.empty_table()),
                    Replace(CHANGES, CHANGES_SCHEMA.empty_table()),
                ],
                meta | {BUILD: str(build), FULL_BUILD: str(build)},
            )
            mode = "full"
        else:
            assert since is not None
            counts = self._incremental(facts, identifiers, int(since), meta, build)
            mode = "incremental"
        profiles = int(self.store.execute(self.store.table(COMPUTED).count()))
        traits = int(self.store.execute(self.store.table(TRAITS).count()))
        rebuilt = profiles if mode == "full" else counts.get("merged", 0) + counts.get("recomputed", 0)
        return BuildReport(
            mode, profiles, rebuilt, traits, round(time.perf_counter() - started, 3),
            merged=counts.get("merged", 0), recomputed=profiles if mode == "full" else counts.get("recomputed", 0),
        )  # fmt: skip

    def _incremental(
        self, facts: ir.Table, identifiers: ir.Table, since: int, meta: dict[str, str], build: int
    ) -> dict[str, int]:
        """Bring the dirty profiles up to date (see :meth:`build`); how many were merged
        and how many computed again."""
        dirty = self._dirty()
        if not dirty:
            self.store.write([], meta)
            return {}
        recompute = {p for p, c in dirty.items() if c == RECOMPUTE}
        mergeable = set(dirty) - recompute
        changes: list[Change] = []
        merged = 0
        if mergeable:
            new, schema = self._new_events(facts, identifiers, since, mergeable)
            with_events = set(new.column("profile_id").to_pylist())
            # A trait without a merge: every profile with new events is computed again.
            late = self._late(new, with_events) if all(t.mergeable for t in self.computed) else with_events
            recompute |= late
            merging = with_events - late
            if merging:
                changes += self._merge_changes(new, schema, merging)
                merged = len(merging)
        if recompute:
            changes += self._recompute_changes(facts, identifiers, recompute)
        keys = pa.table({"profile_id": pa.array(sorted(dirty), pa.string())})
        processed = ibis.table(keys.schema, name=_WORK)
        changes += [Replace(_WORK, keys, temporary=True), DeleteRows(DIRTY, ("profile_id",), processed), Drop(_WORK)]
        feed = pa.table({"build": pa.array([build] * keys.num_rows, pa.int64()), "profile_id": keys["profile_id"]})
        changes.append(Append(CHANGES, feed))
        self.store.write(changes, meta | {BUILD: str(build)})
        return {"merged": merged, "recomputed": len(recompute)}

    def _dirty(self) -> dict[str, str]:
        """Each dirty profile with how it changed (the strongest of its marks)."""
        if not self.store.has_table(DIRTY):
            return {}
        # (A list from before marks said how is never read here: such stores have no
        # profiles_seq, so their next build is a full one.)
        marks: dict[str, str] = {}
        rows = self.store.to_pyarrow(self.store.table(DIRTY).distinct())
        for profile, change in zip(rows["profile_id"].to_pylist(), rows["change"].to_pylist(), strict=True):
            if marks.get(profile) != RECOMPUTE:  # once to be computed again, always
                marks[profile] = change
        return marks

    def _new_events(
        self, facts: ir.Table, identifiers: ir.Table, since: int, profiles: set[str]
    ) -> tuple[pa.Table, ibis.Schema]:
        """The events after ``since`` of ``profiles``, attributed (a few thousand rows:
        read by ``seq``, which the facts are stored in order of), and their schema in
        the engine's types (Arrow's would differ on Spark: ``timestamp(6)`` for
        ``timestamp``)."""
        recent = facts.filter(facts.seq > since)
        expr = profile_events(recent, _carried(recent, identifiers))
        attributed = self.store.to_pyarrow(expr)
        wanted = pa.array(sorted(profiles), pa.string())
        return attributed.filter(pc.is_in(attributed["profile_id"], value_set=wanted)), expr.schema()

    def _late(self, new: pa.Table, profiles: set[str]) -> set[str]:
        """Of ``profiles``, those with a new event older than their latest stored one (a
        merge would not be exact: a latest value or a consent change could fall between)."""
        if not profiles:
            return set()
        mine = new.filter(pc.is_in(new["profile_id"], value_set=pa.array(sorted(profiles), pa.string())))
        earliest = mine.group_by("profile_id").aggregate([("timestamp", "min")])
        first = ibis.memtable(earliest.rename_columns(["profile_id", "t"]))
        stored = self.store.table(COMPUTED)
        late = stored.join(first, stored.profile_id == first.profile_id).filter(first.t < stored[LAST_EVENT])
        return set(self.store.to_pyarrow(late.select("profile_id"))["profile_id"].to_pylist())

    def _merge_changes(self, new: pa.Table, schema: ibis.Schema, merging: set[str]) -> list[Change]:
        """The changes that bring ``merging`` profiles up to date from their stored rows
        (a new profile has none) and their new events."""
        events = new.filter(pc.is_in(new["profile_id"], value_set=pa.array(sorted(merging), pa.string())))
        mine = ibis.table(schema, name=_NEW_EVENTS)
        kept = pa.table({"profile_id": pa.array(sorted(merging), pa.string())})
        keys = ibis.table(kept.schema, name=_WORK_MERGING)
        stored_computed = self.store.table(COMPUTED).semi_join(keys, "profile_id")
        stored_consent = self.store.table(CONSENT).semi_join(keys, "profile_id")
        key = ("profile_id",)
        return [
            Replace(_NEW_EVENTS, events, temporary=True),
            Replace(_WORK_MERGING, kept, temporary=True),
            ReplaceRows(TRAITS, ("profile_id", "trait"), newer_winners(self.store.table(TRAITS), mine, self.source_priority)),
            ReplaceRows(COMPUTED, key, merge_computed(stored_computed, computed_traits(mine, self.computed), self.computed)),
            Append(CONSENT, consent_changes_after(stored_consent, mine)),
            Drop(_WORK_MERGING),
            Drop(_NEW_EVENTS),
        ]

    def _recompute_changes(self, facts: ir.Table, identifiers: ir.Table, profiles: set[str]) -> list[Change]:
        """The changes that compute ``profiles`` again from all their events, replacing
        their rows (profiles that no longer exist, merged into another, lose theirs)."""
        chosen = pa.table({"profile_id": pa.array(sorted(profiles), pa.string())})
        wanted = ibis.table(chosen.schema, name=_WORK_RECOMPUTE)
        members = identifiers.semi_join(wanted, identifiers.profile_id == wanted.profile_id)
        # Only events that could belong to these profiles are joined to the graph.
        hits = carrying(facts, members)
        candidates = facts.semi_join(hits, facts.seq == hits.seq)
        stage = ibis.table(candidates.schema(), name=_CANDIDATES)
        attributed = profile_events(stage, _carried(stage, identifiers))
        attributed = attributed.semi_join(wanted, attributed.profile_id == wanted.profile_id)
        mine = ibis.table(attributed.schema(), name=_ATTRIBUTED)
        key = ("profile_id",)
        return [
            Replace(_WORK_RECOMPUTE, chosen, temporary=True),
            Replace(_CANDIDATES, candidates, temporary=True),
            Replace(_ATTRIBUTED, attributed, temporary=True),
            ReplaceRows(TRAITS, key, merged_traits(mine, self.source_priority), delete=wanted),
            ReplaceRows(COMPUTED, key, computed_traits(mine, self.computed), delete=wanted),
            ReplaceRows(CONSENT, key, consent_history(mine), delete=wanted),
            Drop(_ATTRIBUTED),
            Drop(_CANDIDATES),
            Drop(_WORK_RECOMPUTE),
        ]

    def _fingerprint(self, facts: ir.Table, identifiers: ir.Table) -> str:
        """Of the build's expressions and the facts' declarations: a change of either, or
        of settings, shows here (computed once per instance: compiling them takes about
        half a second)."""
        if self._built_under is not None:
            return self._built_under
        attributed = profile_events(facts, identifiers)
        sql = "|".join(
            str(ibis.to_sql(expr, dialect="duckdb"))
            for expr in (
                merged_traits(attributed, self.source_priority),
                computed_traits(attributed, self.computed),
                consent_history(attributed),
            )
        )
        sql += "|" + self.identity.facts.fingerprint  # a fact extracted differently changes traits
        self._built_under = hashlib.sha256(sql.encode()).hexdigest()[:16]
        return self._built_under

    def erase(self, key: str) -> ErasureReceipt:
        """Remove a person: their events, failed messages, identity records and every
        derived row; keep tombstones so they are never stored again (see erasure.py)."""
        self.identity.update()  # so identifiers from the latest events are included
        profile = self.identity.profile_id(key)
        identifiers = self.store.table(IDENTIFIERS)
        rows = self.store.to_pyarrow(identifiers.filter(identifiers.profile_id == profile)).to_pylist()
        members = [Identifier(r["identifier_type"], r["identifier_value"]) for r in rows]
        plan = plan_erasure(self.store, self.tombstones, profile, members)
        # Later stages' rows about the person (segment memberships and their history),
        # found while the graph still knows the person's earlier profile ids.
        forget = [change for hook in self.erasure_hooks for change in hook(profile)]
        self.store.apply_erasure(plan.tombstones, plan.event_keys, plan.failed_ids, plan.identifiers, plan.receipt_rows)
        if forget:
            self.store.write(forget)
        self.tombstones.remember(set(plan.tombstones.column("tombstone").to_pylist()))
        self.identity.facts.forget(plan.event_keys)
        self.build(resolve=True, full=True)  # derived tables, rebuilt without the person
        return plan.receipt

    def match(self, on: Sequence[str] = (), settings: MatchSettings | None = None) -> MatchReport:
        """The probabilistic pass: score profiles that share no identifier (CRM records
        with names, birthdays, addresses), link those above the match threshold, list
        those above the review threshold, and rebuild the profiles."""
        from patron.identity.matching import ProbabilisticMatcher

        started = time.perf_counter()
        before = self.build(resolve=True).profiles
        records = match_records(self.store, TRAITS, on)
        result = ProbabilisticMatcher(self.store, settings).match(records, on)
        run_id, new_links = self.identity.add_probable(result.pairs)
        after = self.build(resolve=True).profiles
        return MatchReport(
            run_id=run_id,
            records=records.num_rows,
            matched_pairs=result.matches.num_rows,
            review_pairs=result.reviews.num_rows,
            new_links=new_links,
            profiles_before=before,
            profiles_after=after,
            traits_compared=list(result.traits),
            seconds=round(time.perf_counter() - started, 3),
        )

    def quality(self, rules: IdentifierRules, *, stale_days: int = 365) -> dict[str, Any]:
        """The data-quality report (see quality.py)."""
        from patron.profiles.quality import quality_report

        return quality_report(self.store, rules, stale_days=stale_days)

    def export(self, key: str) -> dict[str, Any]:
        """Everything held about one person (a subject access request): the view, every
        event as received, and the identity links that joined the profile."""
        view = self.show(key, limit=1, offset=0)
        profile = view["profile_id"]
        attributed = profile_events(self.identity.facts.table(), self.store.table(IDENTIFIERS))
        mine = attributed.filter(attributed.profile_id == profile).select("seq")
        log = self.store.events()
        events = self.store.to_pyarrow(log.semi_join(mine, log.seq == mine.seq).order_by(["timestamp", "seq"])).to_pylist()
        for event in events:
            event["raw"] = orjson.loads(event["raw"])
        explanation = self.identity.explain(profile)
        view.pop("timeline")
        return {
            **view,
            "events": events,
            "identity_links": explanation.links,
            "identity_links_refused": explanation.refused,
            "exported_at": utc_now(),
        }

    def show(self, key: str, *, limit: int = 20, offset: int = 0) -> dict[str, Any]:
        """The whole view of one profile: identifiers, traits with provenance, computed
        traits and a page of its event timeline (newest first)."""
        if not self.store.has_table(COMPUTED):
            raise ProfilesNotBuilt()
        profile = self.identity.profile_id(key)
        identifiers = self.store.table(IDENTIFIERS)
        ids = self.store.to_pyarrow(
            identifiers.filter(identifiers.profile_id == profile)
            .select("identifier_type", "identifier_value", "first_seen", "last_seen")
            .order_by(["identifier_type", "identifier_value"])
        ).to_pylist()
        traits = self.store.table(TRAITS)
        trait_rows = self.store.to_pyarrow(traits.filter(traits.profile_id == profile).order_by("trait")).to_pylist()
        computed = self.store.table(COMPUTED)
        computed_rows = self.store.to_pyarrow(computed.filter(computed.profile_id == profile)).to_pylist()
        attributed = profile_events(self.store.table(FACTS), identifiers)
        page = (
            attributed.filter(attributed.profile_id == profile)
            .order_by([ibis.desc("timestamp"), ibis.desc("seq")])
            .select("seq", "timestamp", "type", "event", "name", "source_id", "message_id")
            .limit(limit, offset=offset)
        )
        total = self.store.execute(attributed.filter(attributed.profile_id == profile).count())
        consent_table = self.store.table(CONSENT)
        history = self.store.to_pyarrow(
            consent_table.filter(consent_table.profile_id == profile)
            .order_by(["category", "changed_at", "seq"])
            .select("category", "granted", "changed_at", "source_id", "message_id")
        ).to_pylist()
        consent = {row["category"]: row["granted"] for row in history}  # ordered: the last change wins
        return {
            "profile_id": profile,
            "identifiers": ids,
            "traits": {
                r["trait"]: {
                    "value": orjson.loads(r["value"]),
                    "source_id": r["source_id"],
                    "message_id": r["message_id"],
                    "updated_at": r["updated_at"],
                }
                for r in trait_rows
            },
            # Columns named with a leading _ are the build's state, not traits (computed.py).
            "computed": {k: v for k, v in (computed_rows[0].items() if computed_rows else []) if not k.startswith("_") and k != "profile_id"},
            "consent": {"current": consent, "history": history},
            "timeline": {"total": int(total), "limit": limit, "offset": offset, "events": self.store.to_pyarrow(page).to_pylist()},
        }
