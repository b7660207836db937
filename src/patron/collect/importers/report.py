"""What an import did, how its chunks reach the store, and how it reports progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from patron.collect.spec import Rejection, rejections_to_table
from patron.store.base import Store

#: Messages (or orders) per ``store.append``: one transaction each, so an interrupted
#: import leaves whole chunks behind, never half of one, and a re-run fills the rest.
CHUNK_SIZE = 20_000
#: Rejections kept on the report itself (all of them go to the failed-events table).
SAMPLE_SIZE = 5


class Progress(Protocol):
    """Where an importer reports how far it is (the CLI draws a bar from it)."""

    def start(self, description: str, total: int | None) -> None:
        """Begin a stage of ``total`` units (``None`` when unknown)."""

    def advance(self, amount: int) -> None:
        """``amount`` more units are done."""


class NoProgress:
    """Progress that goes nowhere (library use, tests)."""

    def start(self, description: str, total: int | None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@dataclass
class ImportReport:
    """Counts of one import.

    ``read`` counts what the file held (messages for events, rows for orders and
    customers); ``events`` the messages made from them; ``stored`` those new to the
    store, ``duplicates`` those already there; ``rejected`` the messages or rows
    kept in the failed-events table instead.
    """

    kind: str
    path: str
    source_id: str
    unit: str = "messages"
    read: int = 0
    events: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    erased: int = 0
    """Events of people erased on request, dropped and never stored."""
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "file": self.path,
            "source": self.source_id,
            "unit": self.unit,
            "read": self.read,
            "events": self.events,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "erased": self.erased,
            "rejections": self.samples,
        }

    def summary(self) -> str:
        """One line for people: what was read, stored, already there and rejected."""
        made = "" if self.kind == "events" else f" into {_count(self.events, self.kind)}"
        line = (
            f"{self.path}: read {_count(self.read, self.unit)}{made}; stored {self.stored:,}, "
            f"duplicates {self.duplicates:,}, rejected {self.rejected:,} (source {self.source_id})"
        )
        if self.erased:
            line += f"; {self.erased:,} events of erased people dropped"
        if self.rejected:
            line += "; `patron events failed` lists the rejections"
        return line


def _count(n: int, plural: str) -> str:
    return f"{n:,} {plural if n != 1 else plural.removesuffix('s')}"


class ChunkWriter:
    """Appends an import's chunks to the store, one transaction each, counting as it goes."""

    def __init__(self, store: Store, report: ImportReport, received_at: datetime) -> None:
        self.store = store
        self.report = report
        self.received_at = received_at

    def write(self, events: pa.Table, rejections: list[Rejection]) -> None:
        failed = (
            rejections_to_table(rejections, self.report.source_id, self.received_at)
            if rejections
            else None
        )
        result = self.store.append(events, failed)
        self.report.events += events.num_rows
        self.report.stored += len(result.inserted)
        self.report.duplicates += events.num_rows - len(result.inserted) - len(result.dropped)
        self.report.erased += len(result.dropped)
        self.report.rejected += len(rejections)
        for rejection in rejections[: max(0, SAMPLE_SIZE - len(self.report.samples))]:
            self.report.samples.append(rejection.as_json())
