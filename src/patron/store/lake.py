"""The lake: the event log as Parquet files partitioned by day, for engines that read
files (Spark), written by ``patron export events --to PATH`` from an embedded store.

Layout, under the lake's root::

    events/day=2024-01-31/part-....parquet   every column of the event log (``seq`` too)
    _patron_lake.json                        what was written: events, seq range, days

``day`` is the UTC date of the event's ``timestamp`` (Hive-style partitions, which
Spark, DuckDB and pyarrow all read as a column). A lake is written whole into a folder
beside the target and renamed into place, so a reader never sees half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from patron.store.exceptions import LakeError

EVENTS_DIR = "events"
PARTITION = "day"
MANIFEST = "_patron_lake.json"
LAKE_VERSION = 1


@dataclass(frozen=True)
class ExportReport:
    path: str
    events: int
    days: int
    first_day: str | None
    last_day: str | None
    max_seq: int | None
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def new_lake_folder(target: Path) -> Path:
    """A fresh folder beside ``target`` to write a lake into (see :func:`publish`);
    ``target`` must not exist, or be an empty folder."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise LakeError(f"{target} already exists and is not an empty folder; choose a new path or remove it first")
    parent = target.parent
    if not parent.is_dir():
        raise LakeError(f"the folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise LakeError(f"cannot write in {parent}: permission denied")
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))


def publish(work: Path, target: Path, report: ExportReport) -> None:
    """Write the manifest into ``work`` and rename it to ``target`` (one step)."""
    manifest = {"lake_version": LAKE_VERSION, "partitioned_by": PARTITION, **report.as_json()}
    (work / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    if target.exists():
        target.rmdir()  # empty, checked by new_lake_folder
    work.rename(target)


def discard(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
