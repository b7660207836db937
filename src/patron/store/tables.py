"""Canonical schemas of the store's tables, as Arrow schemas shared by every engine.

The event log keeps each message as received (``raw``, JSON text) plus the columns
later stages filter and join on. All timestamps are UTC without a zone.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

#: Columns of the append-only event log that writers supply. The store adds ``seq``,
#: a strictly increasing number in commit order that incremental stages resume from.
EVENT_SCHEMA = pa.schema(
    [
        ("source_id", pa.string()),
        ("message_id", pa.string()),
        ("type", pa.string()),
        ("event", pa.string()),
        ("name", pa.string()),
        ("user_id", pa.string()),
        ("anonymous_id", pa.string()),
        ("group_id", pa.string()),
        ("previous_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("original_timestamp", pa.timestamp("us")),
        ("sent_at", pa.timestamp("us")),
        ("received_at", pa.timestamp("us")),
        ("raw", pa.string()),
    ]
)
EVENT_COLUMNS: tuple[str, ...] = tuple(EVENT_SCHEMA.names)

#: Messages that were rejected, kept so they can be inspected and replayed.
FAILED_SCHEMA = pa.schema(
    [
        ("source_id", pa.string()),
        ("received_at", pa.timestamp("us")),
        ("message_index", pa.int64()),
        ("field", pa.string()),
        ("reason", pa.string()),
        ("raw", pa.string()),
    ]
)
FAILED_COLUMNS: tuple[str, ...] = tuple(FAILED_SCHEMA.names)


def empty_failed() -> pa.Table:
    return FAILED_SCHEMA.empty_table()
