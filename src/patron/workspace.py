"""The Workspace: one object wiring settings, the store and the components.

The API, the CLI and the web pages are thin shells over it.
"""

from __future__ import annotations

from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING

from patron.collect.eventlog import EventLog
from patron.collect.keys import KeyRing
from patron.collect.service import Collector
from patron.config import Settings
from patron.store import open_store
from patron.store.base import Store

if TYPE_CHECKING:  # imported on first use, so `import patron` stays fast
    from patron.collect.importers import Importers
    from patron.demo import DemoLoader
    from patron.facts import EventFacts
    from patron.identity.identifiers import IdentifierRules
    from patron.identity.service import IdentityGraph
    from patron.profiles.erasure import Tombstones
    from patron.profiles.service import Profiles
    from patron.segments.service import Segments


class Workspace:
    """Everything Patron does, reached from one place.

    Examples:
        >>> with Workspace(Settings(store="shop.duckdb")) as ws:  # doctest: +SKIP
        ...     ws.events.counts().total
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    @cached_property
    def store(self) -> Store:
        """The store, opened on first use."""
        return open_store(
            self.settings.store,
            backend=self.settings.backend,
            spark_master=self.settings.spark_master,
            spark_conf=self.settings.spark_conf,
            checkpoint_threshold=self.settings.checkpoint_threshold,
            memory_limit=self.settings.memory_limit,
        )

    @cached_property
    def collector(self) -> Collector:
        return Collector(self.settings)

    @cached_property
    def keys(self) -> KeyRing:
        return KeyRing(self.store)

    @cached_property
    def events(self) -> EventLog:
        return EventLog(self.store, self.collector)

    @cached_property
    def identifier_rules(self) -> IdentifierRules:
        """How raw values become identifiers (settings ``identity_*``)."""
        from patron.identity.identifiers import DEFAULT_BLOCKED_VALUES, IdentifierRules

        blocked = self.settings.identity_blocked_values
        return IdentifierRules(
            default_region=self.settings.identity_default_region,
            email_provider_rules=self.settings.identity_email_provider_rules,
            blocked_values=DEFAULT_BLOCKED_VALUES if blocked is None else tuple(blocked),
        )

    @cached_property
    def identity(self) -> IdentityGraph:
        """Identity resolution: the graph of identifiers and the profiles it makes."""
        from patron.identity.graph import MergeRules
        from patron.identity.service import IdentityGraph

        rules = MergeRules(limits=dict(self.settings.identity_limits), priority=tuple(self.settings.identity_priority))
        return IdentityGraph(self.store, self.identifier_rules, rules, self.facts)

    @cached_property
    def facts(self) -> EventFacts:
        """The fields of each message later stages read, extracted once (facts.py)."""
        from patron.facts import CORE_FACTS, EventFacts
        from patron.profiles.computed import DEFAULT_COMPUTED_TRAITS, facts_for

        return EventFacts(self.store, CORE_FACTS + facts_for(DEFAULT_COMPUTED_TRAITS))

    @cached_property
    def profiles(self) -> Profiles:
        """The single customer view: merged traits, computed traits, timelines."""
        from patron.profiles.service import Profiles

        profiles = Profiles(
            self.store, self.identity, self.tombstones, source_priority=self.settings.profile_source_priority
        )
        # An erased person leaves no segment membership or history behind.
        profiles.erasure_hooks.append(lambda profile_id: self.segments.forget(profile_id))
        return profiles

    @cached_property
    def segments(self) -> Segments:
        """Dynamic and static segments, their history, RFM and clusters."""
        from datetime import timedelta

        from patron.segments.service import Segments

        as_of = self.settings.segments_as_of
        if as_of is not None and as_of.tzinfo is not None:  # stored times are naive UTC
            from datetime import UTC

            as_of = as_of.astimezone(UTC).replace(tzinfo=None)
        return Segments(
            self.store, self.profiles, as_of=as_of,
            time_refresh=timedelta(minutes=self.settings.segments_time_refresh_minutes),
        )  # fmt: skip

    @cached_property
    def tombstones(self) -> Tombstones:
        """Salted hashes of erased identifiers."""
        from patron.profiles.erasure import Tombstones

        return Tombstones(self.store, self.identifier_rules)

    @cached_property
    def collect_store(self) -> Store:
        """The store as every collection path sees it: events of erased people are dropped."""
        from patron.profiles.erasure import ErasureGuard

        return ErasureGuard(self.store, self.tombstones)

    @cached_property
    def imports(self) -> Importers:
        """File imports: events, orders and customers (``patron import ...``)."""
        from patron.collect.importers import Importers

        return Importers(self.collect_store, self.settings)

    @cached_property
    def demo(self) -> DemoLoader:
        """The bundled demo data (``patron demo``)."""
        from patron.demo import DemoLoader

        return DemoLoader(self.collect_store, self.settings, self.keys)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
            del self.__dict__["store"]

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
