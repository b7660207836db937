"""Reading the event log and the failed-events table, and replaying failed messages."""

from __future__ import annotations

import dataclasses
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import orjson

from patron.collect.service import Collector
from patron.collect.spec import Rejection, rows_to_table
from patron.collect.timestamps import utc_now
from patron.store.base import Store
from patron.store.lake import ExportReport, discard, new_lake_folder, publish
from patron.store.lake import append as append_to_lake


@dataclass(frozen=True)
class EventCounts:
    total: int
    by_type: dict[str, int]
    by_source: dict[str, int]
    failed: int
    first_timestamp: str | None
    last_timestamp: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_type": self.by_type,
            "by_source": self.by_source,
            "failed": self.failed,
            "first_timestamp": self.first_timestamp,
            "last_timestamp": self.last_timestamp,
        }


@dataclass(frozen=True)
class ReplayReport:
    replayed: int
    duplicates: int
    still_failing: int


class EventLog:
    """Inspection of what has been collected; every read is an Ibis expression."""

    def __init__(self, store: Store, collector: Collector) -> None:
        self.store = store
        self.collector = collector

    def counts(self) -> EventCounts:
        events = self.store.events()
        by_type = self.store.to_pyarrow(events.group_by("type").agg(n=events.count()))
        by_source = self.store.to_pyarrow(events.group_by("source_id").agg(n=events.count()))
        span = self.store.to_pyarrow(
            events.aggregate(first=events.timestamp.min(), last=events.timestamp.max())
        ).to_pylist()[0]
        failed_table = self.store.failed_events()
        failed = self.store.execute(
            failed_table.filter(failed_table.status == "failed").count()
        )
        types = dict(sorted(zip(by_type["type"].to_pylist(), by_type["n"].to_pylist(), strict=True)))
        sources = dict(
            sorted(zip(by_source["source_id"].to_pylist(), by_source["n"].to_pylist(), strict=True))
        )
        return EventCounts(
            total=sum(types.values()),
            by_type=types,
            by_source=sources,
            failed=int(failed),
            first_timestamp=span["first"].isoformat() if span["first"] else None,
            last_timestamp=span["last"].isoformat() if span["last"] else None,
        )

    def export(self, to: Path, *, append: bool = False, feeder: str | None = None) -> ExportReport:
        """Write the event log as a lake (Parquet files by day, store/lake.py) at ``to``,
        which must not exist or be empty; all of it or, on any failure, nothing.

        With ``append``, an existing lake gets the events this store took since its
        last append to it (all of them the first time), numbered after the lake's; a
        missing or empty ``to`` gets a whole export. ``feeder`` names this store in the
        lake's manifest (default: host name and store path), so several collection
        nodes can feed one lake.
        """
        started = time.perf_counter()
        to = to.expanduser().absolute()
        feeder = feeder or f"{socket.gethostname()}:{Path(self.store.path).absolute()}"
        if append and to.is_dir() and any(to.iterdir()):

            def write(folder: Path, after: int | None, offset: int, prefix: str) -> dict[str, Any]:
                return self.store.export_events(folder, after_seq=after, seq_offset=offset, prefix=prefix)

            report = append_to_lake(to, feeder, write)
            return dataclasses.replace(report, seconds=round(time.perf_counter() - started, 3))
        work = new_lake_folder(to)
        try:
            written = self.store.export_events(work)
            source_max_seq = written.pop("source_max_seq")
            report = ExportReport(path=str(to), seconds=round(time.perf_counter() - started, 3), **written)
            publish(work, to, report, feeder, source_max_seq)
        except BaseException:
            discard(work)
            raise
        return report

    def tail(self, n: int = 10) -> list[dict[str, Any]]:
        """The ``n`` most recently stored events, oldest first."""
        events = self.store.events()
        expr = events.order_by(ibis.desc("seq")).limit(n)
        rows = self.store.to_pyarrow(expr).to_pylist()
        return list(reversed(rows))

    def failed(self, *, include_replayed: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        table = self.store.failed_events()
        if not include_replayed:
            table = table.filter(table.status == "failed")
        expr = table.order_by("failed_id")
        if limit is not None:
            expr = expr.limit(limit)
        return self.store.to_pyarrow(expr).to_pylist()

    def replay_failed(self, failed_ids: list[int] | None = None) -> ReplayReport:
        """Validate failed messages again (after a fix) and store those that now pass.

        Messages that still fail keep their row, with the new reason.
        """
        candidates = self.failed()
        if failed_ids is not None:
            wanted = set(failed_ids)
            candidates = [row for row in candidates if row["failed_id"] in wanted]
        fixed_ids: list[int] = []
        rows = []
        still = 0
        now = utc_now()
        for row in candidates:
            try:
                message = orjson.loads(row["raw"])
            except orjson.JSONDecodeError:
                still += 1
                continue
            outcome = self.collector.validator.check(
                message, source_id=row["source_id"], received_at=row["received_at"] or now
            )
            if isinstance(outcome, Rejection):
                still += 1
                self.store.update_failure(row["failed_id"], outcome.field or None, outcome.reason)
            else:
                fixed_ids.append(row["failed_id"])
                rows.append(outcome)
        result = self.store.mark_replayed(fixed_ids, rows_to_table(rows))
        return ReplayReport(
            replayed=len(result.inserted), duplicates=len(rows) - len(result.inserted), still_failing=still
        )
