"""Which profile each event belongs to, through the identifiers it carries.

An event belongs to the profile of its ``userId`` when that identifier is in the graph,
else to the profile of its ``anonymousId``. The mapping is a join, not a stored column,
so splitting or merging profiles re-attributes events without rewriting the log.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from patron.identity.identifiers import ANONYMOUS_ID, USER_ID


def profile_events(events: ir.Table, identifiers: ir.Table) -> ir.Table:
    """The event log with a ``profile_id`` column (events with no known identifier dropped)."""
    by_user = identifiers.filter(identifiers.identifier_type == USER_ID).select(
        user_key=identifiers.identifier_value, user_profile=identifiers.profile_id
    )
    by_anon = identifiers.filter(identifiers.identifier_type == ANONYMOUS_ID).select(
        anon_key=identifiers.identifier_value, anon_profile=identifiers.profile_id
    )
    joined = events.left_join(by_user, events.user_id == by_user.user_key).left_join(
        by_anon, events.anonymous_id == by_anon.anon_key
    )
    attributed = joined.mutate(profile_id=ibis.coalesce(joined.user_profile, joined.anon_profile))
    return attributed.filter(attributed.profile_id.notnull()).drop(
        "user_key", "user_profile", "anon_key", "anon_profile"
    )
