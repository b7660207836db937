"""Event-log tables built a column at a time, for importers that make messages themselves.

Orders and the demo data make their messages from known-good parts, so running each
through the generic validator would only repeat checks already made (and at a million
rows, dominate the import). They still obey the validator's rules: a type, an event
name, an identity, a message id, a timestamp not in the far future, and 32 KB at most.
The table is exactly what :func:`~patron.collect.spec.rows_to_table` would build for the
same messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from patron.store.tables import EVENT_SCHEMA


def event_table(
    *,
    source_id: str,
    received_at: datetime,
    kind: str,
    event: str | None,
    message_ids: Sequence[str],
    user_ids: Sequence[str | None],
    anonymous_ids: Sequence[str | None],
    timestamps: pa.Array,
    raws: Sequence[str],
) -> pa.Table:
    """Rows of one message type (and event name), given per-message columns.

    ``timestamps`` are the messages' own times; with no ``sentAt`` they are both the
    original and the corrected timestamp, as the spec's clock-skew rule says.
    """
    n = len(message_ids)
    time = pa.timestamp("us")
    timestamps = timestamps.cast(time)
    columns = [
        pa.array([source_id] * n, pa.string()),
        pa.array(message_ids, pa.string()),
        pa.array([kind] * n, pa.string()),
        pa.array([event] * n, pa.string()),
        pa.nulls(n, pa.string()),
        pa.array(user_ids, pa.string()),
        pa.array(anonymous_ids, pa.string()),
        pa.nulls(n, pa.string()),
        pa.nulls(n, pa.string()),
        timestamps,
        timestamps,
        pa.nulls(n, time),
        pa.array([received_at] * n, time),
        pa.array(raws, pa.string()),
    ]
    return pa.Table.from_arrays(columns, schema=EVENT_SCHEMA)
