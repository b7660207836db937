"""Traits merged from all of a profile's messages, with where each value came from.

The rule: for each trait, the value from the message with the latest event timestamp
wins (ties: the later stored message); a ``null`` never overwrites a value; when
``source_priority`` names sources (``PATRON_PROFILE_SOURCE_PRIORITY='["crm", "web"]'``),
a value from an earlier-named source beats any value from a later-named or unnamed one,
whatever their times; values come
from ``identify`` traits and from ``context.traits`` on any message. Each merged trait
keeps the source, message and time it came from. Values stay JSON text, so a number
stays a number and an address stays an object.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from patron.profiles.attribution import object_entries


def trait_values(attributed: ir.Table) -> ir.Table:
    """Every (profile, trait, value) sighting: one row per trait per message."""
    entries = object_entries(attributed, ("traits", "context_traits"), "trait")
    valued = entries.mutate(value=entries.entry.cast("string")).drop("entry")
    return valued.filter(valued.value.notnull() & (valued.value != "null"))


def merged_traits(attributed: ir.Table, source_priority: Sequence[str] = ()) -> ir.Table:
    """One row per profile and trait: the winning value and its provenance."""
    return winning_values(trait_values(attributed), source_priority)


def newer_winners(stored: ir.Table, attributed: ir.Table, source_priority: Sequence[str] = ()) -> ir.Table:
    """The rows of :func:`merged_traits` that sightings in newer events (``attributed``)
    change: per profile and trait, the best new sighting where it beats the ``stored``
    winner. A new sighting is never older than the stored one (the build merges only
    then), so it wins unless the stored value came from a source of higher priority; the
    stored values themselves are never read."""
    best = winning_values(trait_values(attributed), source_priority)
    if not source_priority:
        return best
    held = stored.select(held_profile=stored.profile_id, held_trait=stored.trait, held_rank=_rank(stored, source_priority))
    joined = best.left_join(held, (best.profile_id == held.held_profile) & (best.trait == held.held_trait))
    wins = joined.held_rank.isnull() | (_rank(joined, source_priority) <= joined.held_rank)
    return joined.filter(wins).select(*best.columns)


def _rank(values: ir.Table, source_priority: Sequence[str]) -> ir.IntegerValue:
    """A value's source rank: its place in ``source_priority`` (others after them)."""
    if not source_priority:
        return ibis.literal(0)
    return ibis.cases(
        *((values.source_id == source, position) for position, source in enumerate(source_priority)),
        else_=len(source_priority),
    )


def winning_values(values: ir.Table, source_priority: Sequence[str] = ()) -> ir.Table:
    """The winning sighting per profile and trait (``values``: ``profile_id, trait, value,
    source_id, message_id, seq, timestamp``)."""
    rank = _rank(values, source_priority)
    order = ibis.window(
        group_by=[values.profile_id, values.trait],
        order_by=[rank, ibis.desc(values.timestamp), ibis.desc(values.seq)],
    )
    ranked = values.mutate(rank=ibis.row_number().over(order))
    return ranked.filter(ranked.rank == 0).select(
        "profile_id", "trait", "value", "source_id", "message_id", updated_at=ranked.timestamp
    )
