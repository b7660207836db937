"""``patron import events``: Segment-spec messages from JSONL, JSON or Parquet files.

Every message passes the same :class:`~patron.collect.spec.MessageValidator` as the HTTP
API. Messages without a ``messageId`` get one derived from their content, so importing
the same file twice stores nothing the second time.
"""

from __future__ import annotations

from pathlib import Path

from patron.collect.importers.files import BadItem, count_messages, read_messages
from patron.collect.importers.report import (
    CHUNK_SIZE,
    ChunkWriter,
    ImportReport,
    NoProgress,
    Progress,
)
from patron.collect.spec import EventRow, MessageValidator, Rejection, rows_to_table
from patron.collect.timestamps import utc_now
from patron.store.base import Store

DEFAULT_SOURCE = "import"


def import_events(
    store: Store,
    validator: MessageValidator,
    path: Path,
    *,
    source_id: str = DEFAULT_SOURCE,
    progress: Progress | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ImportReport:
    """Validate and store the messages of ``path``; rejected ones go to failed events.

    Args:
        validator: should derive missing message ids from content
            (:func:`~patron.collect.spec.content_message_id`) so re-imports are idempotent.
        chunk_size: messages per transaction.

    Raises:
        ImportFileError: the file cannot be read as messages at all.
    """
    progress = progress or NoProgress()
    report = ImportReport("events", str(path), source_id)
    received_at = utc_now()
    writer = ChunkWriter(store, report, received_at)
    # Only Parquet says up front how many messages it holds; for text files the bar
    # counts messages without a total.
    progress.start(f"importing {path.name}", count_messages(path))
    rows: list[EventRow] = []
    rejections: list[Rejection] = []
    for block in read_messages(path):
        for position, message in block.items:
            report.read += 1
            if isinstance(message, BadItem):
                rejections.append(Rejection(position, "", message.reason, message.raw))
                continue
            outcome = validator.check(
                message,
                source_id=source_id,
                received_at=received_at,
                index=position,
                batch_context=block.context,
                batch_sent_at=block.sent_at,
            )
            if isinstance(outcome, Rejection):
                rejections.append(outcome)
            else:
                rows.append(outcome)
            if len(rows) + len(rejections) >= chunk_size:
                writer.write(rows_to_table(rows), rejections)
                progress.advance(len(rows) + len(rejections))
                rows, rejections = [], []
    if rows or rejections:
        writer.write(rows_to_table(rows), rejections)
        progress.advance(len(rows) + len(rejections))
    return report
