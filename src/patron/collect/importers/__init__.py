"""File imports: Segment messages, order exports and CRM exports into the event log.

Each importer reads a file (:mod:`.files`), turns it into event-log rows, and appends
them in chunks, one transaction each (:class:`.report.ChunkWriter`); rows or messages
that break the rules go to the failed-events table with their position and reason.
Re-importing a file stores nothing new: every message id is derived from the content
(events without ids), the order id (orders) or the record and its traits (customers).

* :mod:`.events` -- ``patron import events`` (JSONL, JSON, Parquet)
* :mod:`.orders` -- ``patron import orders`` (CSV, Parquet) as ``Order Completed``
* :mod:`.customers` -- ``patron import customers`` (CSV, Parquet) as ``identify``
"""

from __future__ import annotations

from patron.collect.importers.exceptions import ImportFileError, MissingColumn
from patron.collect.importers.report import ImportReport, NoProgress, Progress
from patron.collect.importers.service import Importers

__all__ = ["ImportFileError", "ImportReport", "Importers", "MissingColumn", "NoProgress", "Progress"]
