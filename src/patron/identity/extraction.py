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
traits first, else ``context.traits``), and ``context.externalIds``; they are read from
the event facts (facts.py), where each message was parsed once.

Normalised values are remembered in ``identity_mapping``, so a resolve of new events
only normalises values never seen before.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from patron.identity.components import (
    EDGE_INPUT_SCHEMA,
    SEEN_SCHEMA,
    edges_to_table,
    first_per_pair_table,
    merge_sightings,
)
from patron.identity.graph import _PRIORITY_HINT, Edge
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
from patron.store.base import Append, Change, Drop, Replace, Store

#: The stored graph's identifiers (service.py), read to tell a user id from an anonymous id.
IDENTIFIERS_TABLE = "identity_identifiers"

_BASE = ("seq", "source_id", "message_id", "type", "timestamp")

#: Raw values already normalised, kept between resolves so an incremental resolve only
#: sends values it has never seen to Python: kind, raw, id_type, id_value, rank, and the
#: reason when the value was refused as an identifier (id_type null).
MAPPING = "identity_mapping"
#: Working tables of a resolve: each raw value with its sightings, and the normalised
#: identifiers of each message that carries several (the messages that link).
VALUES = "identity_work_values"
KNOWN = "identity_work_known"
FOUND = "identity_work_found"
#: The graph a resolve in the engine reads (:func:`read_graph_in_engine`).
SEEN = "identity_work_seen"
LINKS = "identity_work_links"

_MAPPING_SCHEMA = pa.schema(
    [("kind", pa.string()), ("raw", pa.string()), ("id_type", pa.string()), ("id_value", pa.string()),
     ("rank", pa.int64()), ("reason", pa.string())]
)  # fmt: skip


def raw_identifiers(facts: ir.Table) -> ir.Table:
    """One row per raw identifier per message: ``seq ... kind, raw``."""
    columns = [facts[c] for c in _BASE]
    parts = [
        facts.select(*columns, kind=ibis.literal(USER_ID), raw=facts.user_id),
        facts.select(*columns, kind=ibis.literal(ANONYMOUS_ID), raw=facts.anonymous_id),
        facts.select(*columns, kind=ibis.literal(EMAIL), raw=facts.email),
        facts.select(*columns, kind=ibis.literal(PHONE), raw=facts.phone),
    ]
    with_ids = facts.filter(facts.external_ids.notnull())
    listed = with_ids.select(*[with_ids[c] for c in _BASE], ids=with_ids.external_ids.cast(dt.JSON).array)
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


def _normalise_new(store: Store, rules: IdentifierRules, values: ir.Table, *, prune: bool) -> None:
    """Normalise the raw values (``kind, raw``) the mapping has not seen, and add them to
    it. With ``prune`` (a full resolve), values no message carries any more go."""
    if store.has_table(MAPPING):
        mapping = store.table(MAPPING)
        unseen = values.anti_join(mapping, [values.kind == mapping.kind, values.raw == mapping.raw])
    else:
        unseen = values
    rows: list[tuple[Any, ...]] = []
    found = store.to_pyarrow(unseen.select("kind", "raw"))
    for kind, raw in _columns(found, "kind", "raw"):
        outcome = rules.normalise(kind, raw)
        if isinstance(outcome, RefusedIdentifier):
            rows.append((kind, raw, outcome.type, None, None, outcome.reason))
        else:
            rows.append((kind, raw, outcome.type, outcome.value, _PRIORITY_HINT.get(outcome.type, 9), None))
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in _MAPPING_SCHEMA]
    table = pa.Table.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, _MAPPING_SCHEMA, strict=True)],
        schema=_MAPPING_SCHEMA,
    )
    changes: list[Change] = [Append(MAPPING, table)]
    if prune and store.has_table(MAPPING):
        mapping = store.table(MAPPING)
        changes.append(
            Replace(
                MAPPING, mapping.semi_join(values, [mapping.kind == values.kind, mapping.raw == values.raw])
            )
        )
    store.write(changes)


def _carries_several(facts: ir.Table) -> ir.BooleanValue:
    """Whether a message may carry two identifiers or more, and so link them (decided on
    the facts' columns; a list of external ids counts as two)."""
    present = [ibis.ifelse(facts[c].notnull(), 1, 0) for c in ("user_id", "anonymous_id", "email", "phone")]
    present.append(ibis.ifelse(facts.external_ids.notnull(), 2, 0))
    total = present[0]
    for flag in present[1:]:
        total = total + flag
    return total >= 2


def read_graph(
    store: Store, rules: IdentifierRules, facts: ir.Table, *, since: int | None = None
) -> GraphTables:
    """Identifiers, their sightings, and the distinct links of the events in ``facts``
    (only those with ``seq`` above ``since`` when given: an incremental resolve), as
    tables in Python."""
    if since is not None:
        facts = facts.filter(facts.seq > since)
    sightings, links, refused_counts = _graph_expressions(store, rules, facts, prune=since is None)
    seen = store.to_pyarrow(sightings).select(SEEN_SCHEMA.names).cast(SEEN_SCHEMA)
    edges = store.to_pyarrow(links).cast(EDGE_INPUT_SCHEMA)
    users = seen.filter(pc.equal(seen["identifier_type"], USER_ID))

    def known(previous: pa.Array) -> set[str]:
        return set(
            users.filter(pc.is_in(users["identifier_value"], value_set=previous))[
                "identifier_value"
            ].to_pylist()
        )

    sighted, aliased, alias_refused = _aliases(store, facts, rules, known)
    for key, n in alias_refused.items():
        refused_counts[key] += n
    if sighted:
        seen = merge_sightings(seen, _sightings_table(sighted))
    if aliased:
        edges = first_per_pair_table(pa.concat_tables([edges, edges_to_table(aliased)]))
    return GraphTables(seen, edges, refused_counts)


def read_graph_in_engine(store: Store, rules: IdentifierRules, facts: ir.Table) -> EngineGraph:
    """The graph of the whole log as :func:`read_graph` reads it, left in the engine: the
    work tables :data:`SEEN` (``SEEN_SCHEMA``) and :data:`LINKS` (``EDGE_INPUT_SCHEMA``).
    Only alias calls come to Python (their previous id is told apart there)."""
    sightings, links, refused_counts = _graph_expressions(store, rules, facts, prune=True)
    store.write([Replace(SEEN, sightings.select(SEEN_SCHEMA.names)), Replace(LINKS, links)])
    seen = store.table(SEEN)

    def known(previous: pa.Array) -> set[str]:
        wanted = ibis.memtable(pa.table({"v": pa.array(sorted(set(previous.to_pylist())), pa.string())}))
        users = seen.filter(seen.identifier_type == USER_ID)
        hits = users.semi_join(wanted, users.identifier_value == wanted.v).select("identifier_value")
        return set(store.to_pyarrow(hits).column(0).to_pylist())

    sighted, aliased, alias_refused = _aliases(store, facts, rules, known)
    for key, n in alias_refused.items():
        refused_counts[key] += n
    merges: dict[str, ir.Table] = {}
    if sighted:
        extra = ibis.memtable(_sightings_table(sighted)).cast(seen.schema())
        both = ibis.union(seen, extra, distinct=False)
        merges[SEEN] = both.group_by(["identifier_type", "identifier_value"]).aggregate(
            first_seen=both.first_seen.min(),
            last_seen=both.last_seen.max(),
            messages=both.messages.sum().cast("int64"),
        )
    if aliased:
        stored = store.table(LINKS)
        extra_links = ibis.memtable(edges_to_table(aliased)).cast(stored.schema())
        merges[LINKS] = first_of_each_pair(ibis.union(stored, extra_links, distinct=False))
    if merges:  # through other tables: a table is not replaced by rows read from itself
        store.write([Replace(f"{name}_merged", data) for name, data in merges.items()])
        store.write(
            [
                *(Replace(name, store.table(f"{name}_merged")) for name in merges),
                *(Drop(f"{name}_merged") for name in merges),
            ]
        )
    return EngineGraph(SEEN, LINKS, refused_counts)


def _sightings_table(sighted: list[tuple[Identifier, Any]]) -> pa.Table:
    return pa.table(
        {"identifier_type": [i.type for i, _ in sighted], "identifier_value": [i.value for i, _ in sighted],
         "first_seen": [t for _, t in sighted], "last_seen": [t for _, t in sighted],
         "messages": [1] * len(sighted)},
        schema=SEEN_SCHEMA,
    )  # fmt: skip


def first_of_each_pair(edges: ir.Table) -> ir.Table:
    """One edge per pair of identifiers: the first message that linked them (in the engine)."""
    first = ibis.window(
        group_by=[edges.a_type, edges.a_value, edges.b_type, edges.b_value],
        order_by=[edges.timestamp, edges.seq],
    )
    numbered = edges.mutate(_n=ibis.row_number().over(first))
    return numbered.filter(numbered._n == 0).drop("_n")


def _graph_expressions(
    store: Store, rules: IdentifierRules, facts: ir.Table, *, prune: bool
) -> tuple[ir.Table, ir.Table, dict[tuple[str, str, str], int]]:
    """The sightings (``SEEN_SCHEMA`` columns) and the links (``EDGE_INPUT_SCHEMA``) of the
    events in ``facts``, as expressions on work tables; and the refused values' counts."""
    raw = raw_identifiers(facts)
    # Sightings per raw value first (one pass over the log, few rows out), then per
    # identifier: one message carries one value of each kind, so the counts add up.
    per_value = raw.group_by(["kind", "raw"]).aggregate(
        first_seen=raw.timestamp.min(), last_seen=raw.timestamp.max(), messages=raw.count()
    )
    store.write([Replace(VALUES, per_value)])
    values = store.table(VALUES)
    _normalise_new(store, rules, values, prune=prune)
    mapping = store.table(MAPPING)
    refused_counts: dict[tuple[str, str, str], int] = defaultdict(int)
    refused = values.join(
        mapping.filter(mapping.reason.notnull()), [values.kind == mapping.kind, values.raw == mapping.raw]
    )
    counts = refused.group_by([refused.id_type, refused.raw, refused.reason]).aggregate(
        messages=refused.messages.sum()
    )
    for id_type, raw_value, reason, n in _columns(
        store.to_pyarrow(counts), "id_type", "raw", "reason", "messages"
    ):
        refused_counts[(id_type, raw_value, reason)] += n
    accepted = mapping.filter(mapping.reason.isnull())
    # This resolve's values with their identifiers, once: the mapping holds every value
    # ever seen, and joining the log's identifiers to it directly costs a scan of it.
    matched = values.join(accepted, [values.kind == accepted.kind, values.raw == accepted.raw])
    store.write([Replace(KNOWN, matched.select(
        "kind", "raw", "id_type", "id_value", "rank", "first_seen", "last_seen", "messages"
    ))])  # fmt: skip
    known = store.table(KNOWN)
    sightings = known.group_by(identifier_type=known.id_type, identifier_value=known.id_value).aggregate(
        first_seen=known.first_seen.min(),
        last_seen=known.last_seen.max(),
        messages=known.messages.sum().cast("int64"),
    )

    linking = raw_identifiers(facts.filter(_carries_several(facts)))
    joined = linking.join(known, [linking.kind == known.kind, linking.raw == known.raw])
    store.write(
        [Replace(FOUND, joined.select(*[joined[c] for c in _BASE], "id_type", "id_value", "rank").distinct())]
    )
    found = store.table(FOUND)

    # A star per message from its strongest identifier; then the first message per pair.
    # Most messages carry one identifier and link nothing: only the others are ranked.
    several = found.group_by("seq").aggregate(n=found.count())
    several = several.filter(several.n > 1)
    linking = found.semi_join(several, found.seq == several.seq)
    order = ibis.window(group_by=linking.seq, order_by=[linking["rank"], linking.id_value, linking.id_type])
    ranked = linking.mutate(position=ibis.row_number().over(order))
    anchors = ranked.filter(ranked.position == 0).select(
        seq_a=ranked.seq, at=ranked.id_type, av=ranked.id_value
    )
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
    firsts = first_of_each_pair(pairs)
    links = firsts.select(
        "a_type", "a_value", "b_type", "b_value", kind=firsts.type, source_id=firsts.source_id,
        message_id=firsts.message_id, seq=firsts.seq, timestamp=firsts.timestamp, weight=ibis.null(dt.float64),
    )  # fmt: skip
    return sightings, links, refused_counts


@dataclass
class EngineGraph:
    """The graph read from the log, as tables of the store (:func:`read_graph_in_engine`)."""

    seen: str
    """The table of identifiers with their sightings (``SEEN_SCHEMA``)."""
    edges: str
    """The table of edges (``EDGE_INPUT_SCHEMA``), one per pair."""
    refused: dict[tuple[str, str, str], int] = field(default_factory=dict)


@dataclass
class GraphTables:
    """The graph read from the log, as tables (a full resolve works on these directly)."""

    seen: pa.Table
    """``SEEN_SCHEMA``: each identifier with its first and last sighting and messages."""
    edges: pa.Table
    """``EDGE_INPUT_SCHEMA``: one edge per pair, the first message that linked it."""
    refused: dict[tuple[str, str, str], int] = field(default_factory=dict)


def _columns(table: pa.Table, *names: str) -> Iterator[tuple[Any, ...]]:
    """Rows as tuples, column by column (much faster than a dict per row)."""
    return zip(*(table.column(n).to_pylist() for n in names), strict=True)


def first_per_pair(edges: list[Edge]) -> list[Edge]:
    """One edge per pair of identifiers: the first message that linked them (an alias
    call and another message may both link the same two)."""
    first: dict[tuple[Identifier, Identifier], Edge] = {}
    for edge in edges:
        known = first.get((edge.a, edge.b))
        if known is None or (edge.timestamp, edge.seq) < (known.timestamp, known.seq):
            first[(edge.a, edge.b)] = edge
    return list(first.values())


def _aliases(
    store: Store, facts: ir.Table, rules: IdentifierRules, known: Callable[[pa.Array], set[str]]
) -> tuple[list[tuple[Identifier, Any]], list[Edge], dict[tuple[str, str, str], int]]:
    """``previousId`` to ``userId``: the previous id is an earlier user id when one was seen
    (in these events, ``known(previous ids)`` says which, or, for an incremental resolve,
    stored in the graph already). Returns the previous ids' sightings (the alias message
    carries them), the edges and the refused values."""
    aliases = facts.filter((facts.type == "alias") & facts.previous_id.notnull()).select(
        *_BASE, "previous_id", "user_id"
    )
    rows = store.to_pyarrow(aliases.order_by(["timestamp", "seq"])).to_pylist()
    refused: dict[tuple[str, str, str], int] = defaultdict(int)
    if not rows:
        return [], [], refused
    previous = pa.array([r["previous_id"] for r in rows], pa.string())
    known_users = known(previous)
    if store.has_table(IDENTIFIERS_TABLE):
        stored = store.table(IDENTIFIERS_TABLE)
        hits = stored.filter(
            (stored.identifier_type == USER_ID) & stored.identifier_value.isin(previous.to_pylist())
        )
        known_users |= set(store.to_pyarrow(hits.select("identifier_value")).column(0).to_pylist())
    pending: dict[tuple[Identifier, Identifier], dict[str, Any]] = {}
    sighted: list[tuple[Identifier, Any]] = []
    for row in rows:
        target = rules.normalise(USER_ID, row["user_id"])
        kind = USER_ID if row["previous_id"] in known_users else ANONYMOUS_ID
        source = rules.normalise(kind, row["previous_id"])
        if isinstance(source, RefusedIdentifier):
            refused[(source.type, source.raw, source.reason)] += 1
            continue
        if not isinstance(target, Identifier) or source == target:
            continue
        sighted.append((source, row["timestamp"]))
        a, b = sorted((source, target))
        pending.setdefault((a, b), row)
    edges = [
        Edge(a, b, row["type"], row["source_id"], row["message_id"], row["seq"], row["timestamp"])
        for (a, b), row in pending.items()
    ]
    return sighted, edges, refused
