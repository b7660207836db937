"""Which profile each event belongs to, through the identifiers it carries.

An event belongs to the profile of its ``userId`` when that identifier is in the graph,
else to the profile of its ``anonymousId``, else (records imported from a CRM carry
neither) to the profile of its first ``context.externalIds`` entry. The mapping is a
join, not a stored column, so splitting or merging profiles re-attributes events without
rewriting the log.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from patron.identity.identifiers import ANONYMOUS_ID, EXTERNAL_PREFIX, USER_ID


def profile_events(events: ir.Table, identifiers: ir.Table) -> ir.Table:
    """Event facts (facts.py) with a ``profile_id`` column (events with no known
    identifier dropped)."""
    by_user = identifiers.filter(identifiers.identifier_type == USER_ID).select(
        user_key=identifiers.identifier_value, user_profile=identifiers.profile_id
    )
    by_anon = identifiers.filter(identifiers.identifier_type == ANONYMOUS_ID).select(
        anon_key=identifiers.identifier_value, anon_profile=identifiers.profile_id
    )
    by_external = identifiers.filter(identifiers.identifier_type.startswith(EXTERNAL_PREFIX)).select(
        ext_type=identifiers.identifier_type, ext_key=identifiers.identifier_value, ext_profile=identifiers.profile_id
    )
    keyed = events.mutate(_ext_type=ibis.literal(EXTERNAL_PREFIX) + events.external_type, _ext_id=events.external_id)
    joined = (
        keyed.left_join(by_user, keyed.user_id == by_user.user_key)
        .left_join(by_anon, keyed.anonymous_id == by_anon.anon_key)
        .left_join(by_external, (keyed._ext_type == by_external.ext_type) & (keyed._ext_id == by_external.ext_key))
    )
    attributed = joined.mutate(
        profile_id=ibis.coalesce(joined.user_profile, joined.anon_profile, joined.ext_profile)
    )
    # Columns named, not dropped: a drop of several compiles in set order, and the build's
    # fingerprint (its SQL) would differ from one process to the next.
    kept = attributed.filter(attributed.profile_id.notnull())
    return kept.select(*events.columns, "profile_id")


def carrying(facts: ir.Table, members: ir.Table) -> ir.Table:
    """The ``seq`` of events that carry one of ``members``' identifiers (rows of the
    identity graph): the only events that can belong to their profiles, found by three
    small hash joins rather than attributing every event."""
    seqs = []
    for kind, column in ((members.identifier_type == USER_ID, "user_id"),
                         (members.identifier_type == ANONYMOUS_ID, "anonymous_id"),
                         (members.identifier_type.startswith(EXTERNAL_PREFIX), "external_id")):  # fmt: skip
        values = members.filter(kind).select(v=members.identifier_value)
        seqs.append(facts.semi_join(values, facts[column] == values.v).select("seq"))
    return ibis.union(*seqs, distinct=True)


def object_entries(attributed: ir.Table, columns: tuple[str, ...], key: str) -> ir.Table:
    """One row per entry of the JSON objects (text) in ``columns`` of attributed facts:
    ``profile_id, source_id, message_id, seq, timestamp``, the entry's ``key`` and its
    value as JSON (``entry``). How traits and consent preferences become rows."""
    keep = ("profile_id", "source_id", "message_id", "seq", "timestamp")
    parts = []
    for column in columns:
        present = attributed.filter(attributed[column].notnull())
        parts.append(present.select(*keep, doc=present[column].cast(dt.JSON).map))
    rows = ibis.union(*parts, distinct=False)
    rows = rows.filter(rows.doc.notnull())
    keyed = rows.mutate(**{key: rows.doc.keys().unnest()})
    return keyed.mutate(entry=keyed.doc[keyed[key]]).drop("doc")
