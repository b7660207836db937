"""Reading the identity graph out of the event log inside the engine.

Parsing every message in Python does not scale (about 100,000 events a second, and the
whole log in memory). Instead, Ibis expressions list every raw identifier each message
carries; only the *distinct* raw values come to Python to be normalised (the rules need
the ``phonenumbers`` library), and the normalised values go back into the engine, which
then computes what the union-find needs: each identifier's first and last sighting, and
each distinct pair of identifiers seen together with the first message that linked them.
Python holds identifiers and distinct pairs, never the log.

The identifiers of a message are the same as :meth:`IdentifierRules.in_message` finds:
``userId``, ``anonymousId``, the email and phone of the traits (an identify's own
traits first, else ``context.traits``), and ``context.externalIds``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from patron.identity.graph import _PRIORITY_HINT, Edge, GraphInput, Sighting
from patron.identity.identifiers import (
    ANONYMOUS_ID,
    EMAIL,
    EXTERNAL_PREFIX,
    PHONE,
    USER_ID,
    Identifier,
    IdentifierRules,
    RefusedIdentifier,
)
from patron.store.base import Store

_BASE = ("seq", "source_id", "message_id", "type", "timestamp")

#: Working tables of a resolve, replaced by the next one: raw identifiers per message,
#: their normalised values, and the normalised identifiers per message.
RAW = "identity_work_raw"
MAPPING = "identity_work_normalised"
FOUND = "identity_work_found"


def raw_identifiers(events: ir.Table) -> ir.Table:
    """One row per raw identifier per message: ``seq ... kind, raw``."""
    columns = [events[c] for c in _BASE]
    # Parsing JSON is the costly part: only messages whose text mentions traits or
    # external ids are parsed at all (a plain substring test first).
    with_traits = events.filter(events.raw.contains('"traits"'))
    traits_doc = with_traits.raw.cast(dt.JSON)

    def trait_of(table: ir.Table, name: str) -> ir.StringValue:
        return ibis.ifelse(
            table.type == "identify",
            ibis.coalesce(traits_doc["traits"][name].str, traits_doc["context"]["traits"][name].str),
            traits_doc["context"]["traits"][name].str,
        )

    parts = [
        events.select(*columns, kind=ibis.literal(USER_ID), raw=events.user_id),
        events.select(*columns, kind=ibis.literal(ANONYMOUS_ID), raw=events.anonymous_id),
        with_traits.select(*[with_traits[c] for c in _BASE], kind=ibis.literal(EMAIL), raw=trait_of(with_traits, "email")),
        with_traits.select(*[with_traits[c] for c in _BASE], kind=ibis.literal(PHONE), raw=trait_of(with_traits, "phone")),
    ]
    with_ids = events.filter(events.raw.contains('"externalIds"'))
    listed = with_ids.select(*[with_ids[c] for c in _BASE], ids=with_ids.raw.cast(dt.JSON)["context"]["externalIds"].array)
    listed = listed.filter(listed.ids.notnull())
    item = listed.mutate(entry=listed.ids.unnest())
    entry = item.entry.cast(dt.JSON)
    parts.append(
        item.select(
            *[item[c] for c in _BASE],
            kind=ibis.literal(EXTERNAL_PREFIX) + entry["type"].str,
            raw=ibis.coalesce(entry["id"].str, entry["id"].int.cast("string")),
        )
    )
    rows = ibis.union(*parts, distinct=False)
    return rows.filter(rows.raw.notnull() & rows.kind.notnull() & (rows.raw != ""))


def read_graph(store: Store, rules: IdentifierRules) -> GraphInput:
    """Identifiers, their sightings, and the distinct links of the whole event log."""
    events = store.events()
    # Materialised once: every later step reads these rows instead of parsing JSON again.
    store.materialize({RAW: raw_identifiers(events)})
    raw = store.table(RAW)
    distinct = store.to_pyarrow(raw.group_by(["kind", "raw"]).aggregate(messages=raw.count())).to_pylist()
    graph = GraphInput()
    mapping_rows = []
    for row in distinct:
        outcome = rules.normalise(row["kind"], row["raw"])
        if isinstance(outcome, RefusedIdentifier):
            graph.refused[(outcome.type, outcome.raw, outcome.reason)] += row["messages"]
        else:
            mapping_rows.append(
                {"kind": row["kind"], "raw": row["raw"], "id_type": outcome.type, "id_value": outcome.value,
                 "rank": _PRIORITY_HINT.get(outcome.type, 9)}
            )
    schema = pa.schema(
        [("kind", pa.string()), ("raw", pa.string()), ("id_type", pa.string()), ("id_value", pa.string()), ("rank", pa.int64())]
    )
    store.replace_tables({MAPPING: pa.Table.from_pylist(mapping_rows, schema=schema)})
    mapping = store.table(MAPPING)
    joined = raw.join(mapping, [raw.kind == mapping.kind, raw.raw == mapping.raw])
    store.materialize({FOUND: joined.select(*[joined[c] for c in _BASE], "id_type", "id_value", "rank").distinct()})
    found = store.table(FOUND)

    sightings = found.group_by(["id_type", "id_value"]).aggregate(
        first_seen=found.timestamp.min(), last_seen=found.timestamp.max(), messages=found.seq.nunique()
    )
    for row in store.to_pyarrow(sightings).to_pylist():
        graph.seen[Identifier(row["id_type"], row["id_value"])] = Sighting(row["first_seen"], row["last_seen"], row["messages"])

    # A star per message from its strongest identifier; then the first message per pair.
    order = ibis.window(group_by=found.seq, order_by=[found["rank"], found.id_value, found.id_type])
    ranked = found.mutate(position=ibis.row_number().over(order))
    anchors = ranked.filter(ranked.position == 0).select(seq_a=ranked.seq, at=ranked.id_type, av=ranked.id_value)
    others = ranked.filter(ranked.position > 0)
    star = others.join(anchors, others.seq == anchors.seq_a)
    a_first = (star.at < star.id_type) | ((star.at == star.id_type) & (star.av < star.id_value))
    pairs = star.select(
        *[star[c] for c in _BASE],
        a_type=ibis.ifelse(a_first, star.at, star.id_type),
        a_value=ibis.ifelse(a_first, star.av, star.id_value),
        b_type=ibis.ifelse(a_first, star.id_type, star.at),
        b_value=ibis.ifelse(a_first, star.id_value, star.av),
    )
    first = ibis.window(group_by=[pairs.a_type, pairs.a_value, pairs.b_type, pairs.b_value], order_by=[pairs.timestamp, pairs.seq])
    firsts = pairs.mutate(n=ibis.row_number().over(first))
    firsts = firsts.filter(firsts.n == 0).drop("n")
    for row in store.to_pyarrow(firsts).to_pylist():
        graph.edges.append(
            Edge(
                Identifier(row["a_type"], row["a_value"]),
                Identifier(row["b_type"], row["b_value"]),
                row["type"], row["source_id"], row["message_id"], row["seq"], row["timestamp"],
            )
        )
    _aliases(store, events, rules, graph)
    return graph


def _aliases(store: Store, events: ir.Table, rules: IdentifierRules, graph: GraphInput) -> None:
    """``previousId`` to ``userId``: the previous id is an earlier user id when one was seen."""
    aliases = events.filter((events.type == "alias") & events.previous_id.notnull()).select(
        *_BASE, "previous_id", "user_id"
    )
    known_users = {i.value for i in graph.seen if i.type == USER_ID}
    pending: dict[tuple[Identifier, Identifier], dict[str, Any]] = {}
    refused: dict[tuple[str, str, str], int] = defaultdict(int)
    for row in store.to_pyarrow(aliases.order_by(["timestamp", "seq"])).to_pylist():
        target = rules.normalise(USER_ID, row["user_id"])
        kind = USER_ID if row["previous_id"] in known_users else ANONYMOUS_ID
        source = rules.normalise(kind, row["previous_id"])
        if isinstance(source, RefusedIdentifier):
            refused[(source.type, source.raw, source.reason)] += 1
            continue
        if not isinstance(target, Identifier) or source == target:
            continue
        if source not in graph.seen:
            graph.seen[source] = Sighting(row["timestamp"], row["timestamp"], 1)
        a, b = sorted((source, target))
        pending.setdefault((a, b), row)
    for (a, b), row in pending.items():
        graph.edges.append(Edge(a, b, row["type"], row["source_id"], row["message_id"], row["seq"], row["timestamp"]))
    for key, n in refused.items():
        graph.refused[key] += n
