"""The message properties segment conditions read, kept where evaluation finds them fast.

A behavioral condition may read any property of an event's message (``where
properties.nps_category = 'promoter'``), which the typed event facts do not hold: it is
in the message's JSON in the event log. Reading it there costs a scan of the log's
message column, which the engine decompresses in every block that holds one such event
(seconds at tens of millions of events, however few events match) on every evaluation.

So the values of the (event, property) pairs that saved segments use are kept in a
derived table, ``segment_properties`` (``seq``, ``path``, ``value``; one row per event
and property present), filled once for a pair when a segment first uses it and then
only with the events extracted since (the facts' watermark): the log's later blocks
only, which are the newest. An erased person's rows go with their events
(:meth:`PropertyIndex.forget`). Previews, which write nothing, read the log directly
for pairs not indexed yet.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import orjson
import pyarrow as pa

from patron.facts import EventFacts
from patron.profiles.attribution import carrying
from patron.store.base import Append, Change, DeleteRows, Replace, Store

PROPERTIES = "segment_properties"
SCHEMA = pa.schema([("seq", pa.int64()), ("path", pa.string()), ("value", pa.string())])
_THROUGH = "segment_properties_seq"
"""Meta: the last event ``seq`` whose properties are indexed."""
_PAIRS = "segment_properties_pairs"
"""Meta: the indexed (event name, property path) pairs, as JSON."""

Pair = tuple[str, str]


def pairs_of(events: Iterable[str], paths: Iterable[str]) -> set[Pair]:
    """The pairs a query's requirements name (every property of every event it reads
    properties from: a little more than it needs when it reads several)."""
    return {(event, path) for event in events for path in paths}


class PropertyIndex:
    """The ``segment_properties`` table of a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def indexed(self) -> set[Pair]:
        """The pairs the table holds."""
        if not self.store.has_table(PROPERTIES):
            return set()
        return {(e, p) for e, p in orjson.loads(self.store.get_meta(_PAIRS) or "[]")}

    def covers(self, pairs: set[Pair]) -> bool:
        """Whether the table holds ``pairs`` up to the extracted events."""
        through = self.store.get_meta(_THROUGH)
        top = EventFacts(self.store).watermark()
        return pairs <= self.indexed() and through is not None and top is not None and int(through) >= top

    def update(self, pairs: set[Pair]) -> None:
        """Index ``pairs`` (those new over every extracted event) and bring the indexed
        ones up to the facts' watermark; one write, nothing when all is current."""
        top = EventFacts(self.store).watermark()
        if top is None:
            return
        indexed = self.indexed()
        through = int(self.store.get_meta(_THROUGH) or -1)
        new = pairs - indexed
        log = self.store.events()
        parts = []
        if new:
            parts.append(self._rows(log.filter(log.seq <= top), new))
        if indexed and through < top:
            parts.append(self._rows(log.filter(log.seq > through, log.seq <= top), indexed))
        if not parts:
            return
        changes: list[Change] = []
        if not self.store.has_table(PROPERTIES):
            changes.append(Replace(PROPERTIES, SCHEMA.empty_table()))
        changes.append(Append(PROPERTIES, ibis.union(*parts, distinct=False)))
        meta = {_THROUGH: str(top), _PAIRS: orjson.dumps(sorted(indexed | new)).decode()}
        self.store.write(changes, meta)

    def _rows(self, log: ir.Table, pairs: set[Pair]) -> ir.Table:
        """Rows of the table for the messages of ``log`` and ``pairs``: each message
        parsed once for all the paths of its event."""
        parts = []
        for event in sorted({e for e, _ in pairs}):
            paths = sorted(p for e, p in pairs if e == event)
            columns = {f"v{i}": f"properties.{p}" for i, p in enumerate(paths)}
            mine = log.filter(log.event == event).select("seq", "raw")
            read = self.store.json_values(mine, "raw", columns)
            for column, path in zip(columns, paths, strict=True):
                present = read.filter(read[column].notnull())
                parts.append(present.select(
                    seq=present.seq.cast(dt.int64), path=ibis.literal(path, type=dt.string), value=present[column]
                ))  # fmt: skip
        return ibis.union(*parts, distinct=False)

    def values(self, events: Iterable[str], paths: dict[str, str]) -> ir.Table:
        """One row per message of ``events`` with a value for any of ``paths`` (column
        name -> property path): ``_ps`` (its seq) and one column per path; from the
        table when it holds the pairs, else from the messages (a preview)."""
        events = sorted(set(events))
        if not self.covers(pairs_of(events, paths.values())):
            log = self.store.events()
            log = log.filter(log.event.isin(events)).select("seq", "raw")
            read = self.store.json_values(log, "raw", {c: f"properties.{p}" for c, p in paths.items()})
            return read.select(_ps=read.seq, **{c: read[c] for c in paths})
        table = self.store.table(PROPERTIES)
        mine = table.filter(table.path.isin(sorted(set(paths.values()))))
        return mine.group_by(_ps=mine.seq).aggregate(
            **{column: mine.value.max(where=mine.path == path) for column, path in paths.items()}
        )

    def forget(self, identifiers: ir.Table) -> list[Change]:
        """The changes that remove the rows of the events carrying ``identifiers`` (an
        erased person's rows of the identity graph): a part of the erasure."""
        if not self.store.has_table(PROPERTIES):
            return []
        from patron.facts import FACTS

        return [DeleteRows(PROPERTIES, ("seq",), carrying(self.store.table(FACTS), identifiers))]
