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


def consent_history(attributed: ir.Table) -> ir.Table:
    """profile_id, category, granted, changed_at, source_id, message_id: one row per change."""
    entries = object_entries(attributed, ("consent", "consent_update"), "category")
    valued = entries.mutate(granted=entries.entry.bool).drop("entry")
    valued = valued.filter(valued.granted.notnull())
    order = ibis.window(group_by=[valued.profile_id, valued.category], order_by=[valued.timestamp, valued.seq])
    with_previous = valued.mutate(previous=valued.granted.lag().over(order))
    changes = with_previous.filter(with_previous.previous.isnull() | (with_previous.previous != with_previous.granted))
    return changes.select(
        "profile_id", "category", "granted", changed_at=changes.timestamp, source_id=changes.source_id,
        message_id=changes.message_id,
    ).distinct()
