"""Consent: a per-purpose state on each profile, with its history.

Sources, as the Segment consent spec sends them:

* ``context.consent.categoryPreferences`` on any message (``{"marketing": true, ...}``):
  the state the client knew when it sent the message;
* ``Consent Updated`` (or Segment's ``Segment Consent Preference Updated``) track events,
  whose ``properties.categoryPreferences`` (or the context's) is the new state.

The history keeps only changes: a row when a category's state differs from the
previous one for that profile. The current state is the latest row per category.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from patron.profiles.attribution import object_entries


def _entries(attributed: ir.Table) -> ir.Table:
    """profile_id, source_id, message_id, seq, timestamp, category, granted: every
    category's state in every message."""
    entries = object_entries(attributed, ("consent", "consent_update"), "category")
    # Compared as JSON text rather than read with ``.bool``: the same on every engine
    # (Ibis runs ``.bool`` on Spark as a Python function per row).
    text = entries.entry.cast("string")
    valued = entries.mutate(granted=ibis.cases((text == "true", True), (text == "false", False), else_=None)).drop(
        "entry"
    )
    return valued.filter(valued.granted.notnull())


def consent_history(attributed: ir.Table) -> ir.Table:
    """profile_id, category, granted, changed_at, source_id, message_id, seq: one row per
    change."""
    return _as_history(_changes(_entries(attributed)))


def consent_changes_after(stored: ir.Table, attributed: ir.Table) -> ir.Table:
    """The changes that newer events (``attributed``) add to the ``stored`` history of
    the same profiles, provided no new event is older than the stored ones: each new
    state is compared with the latest stored state of its category."""
    latest = ibis.window(
        group_by=[stored.profile_id, stored.category], order_by=[ibis.desc(stored.changed_at), ibis.desc(stored.seq)]
    )
    current = stored.mutate(n=ibis.row_number().over(latest))
    current = current.filter(current.n == 0)
    seeds = current.select(
        "profile_id", "source_id", "message_id", "seq", "category", "granted", timestamp=current.changed_at, seed=True
    )
    new = _entries(attributed).mutate(seed=False)
    changes = _changes(ibis.union(seeds, new.select(*seeds.columns)))
    return _as_history(changes.filter(~changes.seed))


def _changes(valued: ir.Table) -> ir.Table:
    """The entries whose state differs from the previous one of their profile and category."""
    order = ibis.window(group_by=[valued.profile_id, valued.category], order_by=[valued.timestamp, valued.seq])
    with_previous = valued.mutate(previous=valued.granted.lag().over(order))
    return with_previous.filter(with_previous.previous.isnull() | (with_previous.previous != with_previous.granted))


def _as_history(changes: ir.Table) -> ir.Table:
    return changes.select(
        "profile_id", "category", "granted", changed_at=changes.timestamp, source_id=changes.source_id,
        message_id=changes.message_id, seq=changes.seq,
    ).distinct()
