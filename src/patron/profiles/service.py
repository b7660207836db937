"""Building profiles (merged traits, computed traits) and reading the 360 view.

``build`` runs inside the engine: the attributed events, the trait merge and every
computed trait are Ibis expressions, materialised into two derived tables in one
transaction:

``profile_traits``    profile_id, trait, value (JSON text), source_id, message_id, updated_at
``profile_computed``  profile_id and one column per computed trait
``profile_consent_history``  profile_id, category, granted, changed_at, source_id, message_id
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import orjson

from patron.collect.timestamps import utc_now
from patron.identity.identifiers import Identifier, IdentifierRules
from patron.identity.service import IDENTIFIERS, IdentityGraph
from patron.profiles.attribution import profile_events
from patron.profiles.computed import DEFAULT_COMPUTED_TRAITS, ComputedTrait, computed_traits
from patron.profiles.consent import consent_history
from patron.profiles.erasure import ErasureReceipt, Tombstones, plan_erasure
from patron.profiles.exceptions import ProfilesNotBuilt
from patron.profiles.match_records import match_records
from patron.profiles.traits import merged_traits
from patron.store.base import Store

if TYPE_CHECKING:
    from patron.identity.matching import MatchSettings

TRAITS = "profile_traits"
COMPUTED = "profile_computed"
CONSENT = "profile_consent_history"


@dataclass(frozen=True)
class BuildReport:
    profiles: int
    traits: int
    seconds: float

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

    def build(self, *, resolve: bool = True) -> BuildReport:
        """Resolve identities (unless told not to), then rebuild traits and computed traits."""
        started = time.perf_counter()
        if resolve:
            self.identity.resolve()
        attributed = profile_events(self.store.events(), self.identity._identifiers())
        self.store.materialize(
            {
                TRAITS: merged_traits(attributed, self.source_priority),
                COMPUTED: computed_traits(attributed, self.computed),
                CONSENT: consent_history(attributed),
            }
        )
        profiles = self.store.execute(self.store.table(COMPUTED).count())
        traits = self.store.execute(self.store.table(TRAITS).count())
        return BuildReport(int(profiles), int(traits), round(time.perf_counter() - started, 3))

    def erase(self, key: str) -> ErasureReceipt:
        """Remove a person: their events, failed messages, identity records and every
        derived row; keep tombstones so they are never stored again (see erasure.py)."""
        self.identity.resolve()  # so identifiers from the latest events are included
        profile = self.identity.profile_id(key)
        identifiers = self.store.table(IDENTIFIERS)
        rows = self.store.to_pyarrow(identifiers.filter(identifiers.profile_id == profile)).to_pylist()
        members = [Identifier(r["identifier_type"], r["identifier_value"]) for r in rows]
        plan = plan_erasure(self.store, self.tombstones, profile, members)
        self.store.apply_erasure(plan.tombstones, plan.event_keys, plan.failed_ids, plan.identifiers, plan.receipt_rows)
        self.tombstones.remember(set(plan.tombstones.column("tombstone").to_pylist()))
        self.build(resolve=True)  # derived tables, rebuilt without the person
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
        attributed = profile_events(self.store.events(), self.store.table(IDENTIFIERS))
        events = self.store.to_pyarrow(
            attributed.filter(attributed.profile_id == profile).order_by(["timestamp", "seq"]).drop("profile_id")
        ).to_pylist()
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
        attributed = profile_events(self.store.events(), identifiers)
        page = (
            attributed.filter(attributed.profile_id == profile)
            .order_by([ibis.desc("timestamp"), ibis.desc("seq")])
            .select("seq", "timestamp", "type", "event", "name", "source_id", "message_id")
            .limit(limit, offset=offset)
        )
        total = self.store.execute(attributed.filter(attributed.profile_id == profile).count())
        consent_table = self.store.table(CONSENT)
        history = self.store.to_pyarrow(
            consent_table.filter(consent_table.profile_id == profile).order_by(["category", "changed_at"]).drop("profile_id")
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
            "computed": {k: v for k, v in (computed_rows[0].items() if computed_rows else []) if k != "profile_id"},
            "consent": {"current": consent, "history": history},
            "timeline": {"total": int(total), "limit": limit, "offset": offset, "events": self.store.to_pyarrow(page).to_pylist()},
        }
