"""Event facts: the fields of each message that later stages read, extracted once.

The event log keeps every message as received (JSON text). Identity resolution, the
trait merge, consent and computed traits each need a few fields from inside it: the
email among the traits, the external ids, an order's revenue, the device type. Parsing
the whole log's JSON on every build is the cost that grows with the log, so each message
is parsed once, into the derived table ``event_facts`` (one row per event, keyed by
``seq``), and every later stage reads typed columns.

The table is kept up to date incrementally: :meth:`EventFacts.refresh` extracts only the
events stored since the last refresh (``seq`` above the watermark kept in ``meta``). It
is rebuilt whole when the declarations change: the fingerprint of the extraction's SQL
is kept beside the watermark, so adding a :class:`Fact` (for a new computed trait, say)
re-extracts the log once.

A fact is a declaration: a name and an Ibis expression over the event row and values
read from inside the message by path::

    Fact("coupon", lambda e, json: json("properties.coupon"))

Every path of every declaration is read in one pass of the engine's JSON reader, so a
message is parsed once however many facts there are (``Store.json_values``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from patron.store.base import Append, DeleteRows, Drop, Replace, Store

FACTS = "event_facts"
_WATERMARK = "facts_seq"
_FINGERPRINT = "facts_fingerprint"
_STAGE = "event_facts_work"

#: Columns copied from the event log as they are.
BASE_COLUMNS = (
    "seq", "source_id", "message_id", "type", "event", "name", "user_id", "anonymous_id", "group_id",
    "previous_id", "timestamp",
)  # fmt: skip

CONSENT_EVENTS = ("Consent Updated", "Segment Consent Preference Updated")


#: ``json(path)`` in a fact's declaration: the value at a dotted path of the message
#: (``"context.device.type"``, ``"properties.products[0].category"``) as text; objects
#: and arrays come as JSON text, JSON ``null`` and missing paths as ``NULL``.
JsonPath = Callable[[str], ir.StringValue]


@dataclass(frozen=True)
class Fact:
    """One column of ``event_facts``: ``extract(event, json)`` with ``event`` the event
    row (its stored columns) and ``json(path)`` a value from inside the message."""

    name: str
    extract: Callable[[ir.Table, JsonPath], ir.Value]
    description: str = ""


def _trait(name: str) -> Callable[[ir.Table, JsonPath], ir.Value]:
    """An identify's own trait, else the one in ``context.traits`` (any message)."""

    def extract(e: ir.Table, json: JsonPath) -> ir.Value:
        in_context = json(f"context.traits.{name}")
        return ibis.ifelse(e.type == "identify", ibis.coalesce(json(f"traits.{name}"), in_context), in_context)

    return extract


#: What identity resolution, the trait merge and consent read.
CORE_FACTS: tuple[Fact, ...] = (
    Fact("email", _trait("email"), "Email among the traits (raw; identity normalises it)"),
    Fact("phone", _trait("phone"), "Phone among the traits (raw)"),
    Fact("external_ids", lambda e, json: json("context.externalIds"), "context.externalIds, JSON text"),
    Fact("external_type", lambda e, json: json("context.externalIds[0].type"), "The first external id's type"),
    Fact("external_id", lambda e, json: json("context.externalIds[0].id"), "The first external id"),
    Fact(
        "traits",
        lambda e, json: ibis.ifelse(e.type == "identify", json("traits"), ibis.null(dt.string)),
        "An identify call's own traits, JSON text",
    ),
    Fact("context_traits", lambda e, json: json("context.traits"), "context.traits, JSON text"),
    Fact("consent", lambda e, json: json("context.consent.categoryPreferences"), "Consent the client knew, JSON text"),
    Fact(
        "consent_update",
        lambda e, json: ibis.ifelse(
            e.event.isin(CONSENT_EVENTS), json("properties.categoryPreferences"), ibis.null(dt.string)
        ),
        "A Consent Updated event's new preferences, JSON text",
    ),
)


class EventFacts:
    """The ``event_facts`` table of a store (``workspace.facts``)."""

    def __init__(self, store: Store, facts: Sequence[Fact] = CORE_FACTS) -> None:
        names = [f.name for f in facts]
        clashes = {n for n in names if names.count(n) > 1 or n in BASE_COLUMNS}
        if clashes:
            raise ValueError(f"fact names must be unique and not an event column: {sorted(clashes)}")
        self.store = store
        self.facts = tuple(facts)

    def _paths(self) -> list[str]:
        """Every JSON path the declarations read, in a stable order."""
        seen: list[str] = []

        def record(path: str) -> ir.StringValue:
            if path not in seen:
                seen.append(path)
            return ibis.literal(None, type=dt.string)

        probe = ibis.table(self.store.events().schema(), name="events")
        for fact in self.facts:
            fact.extract(probe, record)
        return seen

    def _stages(self, events: ir.Table) -> tuple[ir.Table, ir.Table]:
        """The extraction in two steps: every path of every message in one pass of the
        engine's JSON reader (each message parsed once), stored in a work table; then
        the declarations over those columns."""
        paths = self._paths()
        columns = {f"p{i}": p for i, p in enumerate(paths)}
        extracted = self.store.json_values(events.select(*BASE_COLUMNS, "raw"), "raw", columns)
        stage = ibis.table(extracted.schema(), name=_STAGE)
        by_path = {p: stage[c] for c, p in columns.items()}
        facts = stage.select(*BASE_COLUMNS, **{f.name: f.extract(stage, by_path.__getitem__) for f in self.facts})
        return extracted, facts

    @cached_property
    def fingerprint(self) -> str:
        """Of the extraction's SQL: changes when the declarations do (computed once: the
        declarations of an instance do not change)."""
        _, facts = self._stages(self.store.events())
        sql = ibis.to_sql(facts, dialect="duckdb")
        return hashlib.sha256(f"{self._paths()}|{sql}".encode()).hexdigest()[:16]

    def refresh(self, *, full: bool = False) -> int:
        """Extract the events stored since the last refresh (all of them when ``full``,
        on first use, or when the declarations changed); returns how many."""
        events = self.store.events()
        fingerprint = self.fingerprint
        watermark = self.watermark()
        rebuild = full or watermark is None or self.store.get_meta(_FINGERPRINT) != fingerprint
        if not rebuild and watermark is not None:
            events = events.filter(events.seq > watermark)
        top = self.store.execute(events.seq.max())
        if top is None and not rebuild:
            return 0
        if top is not None:
            # Events stored meanwhile (the server keeps writing) wait for the next refresh:
            # the watermark written below must cover exactly what was extracted.
            events = events.filter(events.seq <= top)
        added = int(self.store.execute(events.count()))
        extracted, facts = self._stages(events)
        into = Replace(FACTS, facts) if rebuild else Append(FACTS, facts)
        meta = {_FINGERPRINT: fingerprint, _WATERMARK: str(top if top is not None else -1)}
        # The work table holds personal data only for the length of the write.
        self.store.write([Replace(_STAGE, extracted, temporary=True), into, Drop(_STAGE)], meta)
        return added

    def watermark(self) -> int | None:
        """The last ``seq`` extracted (``None`` before the first refresh)."""
        value = self.store.get_meta(_WATERMARK)
        if value is None or not self.store.has_table(FACTS):
            return None
        return int(value)

    def table(self) -> ir.Table:
        """The facts, refreshed first."""
        self.refresh()
        return self.store.table(FACTS)

    def forget(self, event_keys: pa.Table) -> None:
        """Remove the facts of erased events (``source_id``, ``message_id``)."""
        self.store.write([DeleteRows(FACTS, ("source_id", "message_id"), event_keys)])
