"""The lake: the event log as Parquet files partitioned by day, for engines that read
files (Spark), written by ``patron export events --to PATH`` from an embedded store.

Layout, under the lake's root::

    events/day=2024-01-31/part-N.parquet         every column of the event log (``seq`` too)
    events/day=2024-02-01/inc-000003-N.parquet   the events of the third append
    _patron_lake.json                            what is committed: events, seq, appends, feeders

``day`` is the UTC date of the event's ``timestamp`` (Hive-style partitions, which
Spark, DuckDB and pyarrow all read as a column). A first export is written whole into
a folder beside the target and renamed into place, so a reader never sees half of one.

``--append`` adds the events a store took since its last append (several collection
nodes may feed one lake). Under the lake's lock file, the new events are numbered after
the lake's last ``seq`` (so ``seq`` stays the lake's commit order, which incremental
builds resume from), written into a staging folder, moved beside the others as
``inc-<append>-N.parquet``, and committed by rewriting the manifest in one rename.
Readers take only files of committed appends (:func:`committed_files`): files of an
append that died before its commit are ignored, and removed by the next append.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from patron.store.exceptions import LakeError

EVENTS_DIR = "events"
PARTITION = "day"
MANIFEST = "_patron_lake.json"
LAKE_VERSION = 2
INCREMENT = "inc"
_LOCK = "_patron_lake.lock"
_STAGING = "_patron_staging"


@dataclass(frozen=True)
class ExportReport:
    path: str
    events: int
    days: int
    first_day: str | None
    last_day: str | None
    max_seq: int | None
    seconds: float
    appended: int = 0
    """The append's number (0: the first, whole export)."""

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


def publish(work: Path, target: Path, report: ExportReport, feeder: str, source_max_seq: int | None) -> None:
    """Write the manifest into ``work`` and rename it to ``target`` (one step)."""
    _write_manifest(work, _manifest(report, {feeder: source_max_seq}))
    if target.exists():
        target.rmdir()  # empty, checked by new_lake_folder
    work.rename(target)


def _manifest(report: ExportReport, feeders: dict[str, int | None]) -> dict[str, Any]:
    body = {k: v for k, v in report.as_json().items() if k not in ("path", "seconds")}
    return {"lake_version": LAKE_VERSION, "partitioned_by": PARTITION, **body, "feeders": feeders}


def _write_manifest(lake: Path, manifest: dict[str, Any]) -> None:
    staged = lake / f".{MANIFEST}.tmp"
    staged.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    os.replace(staged, lake / MANIFEST)


def read_manifest(lake: Path) -> dict[str, Any] | None:
    """The lake's manifest, or ``None`` where there is none."""
    try:
        manifest: dict[str, Any] = orjson.loads((lake / MANIFEST).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError) as error:
        raise LakeError(f"cannot read the lake's manifest {lake / MANIFEST}: {error}") from None
    return manifest


def _append_of(name: str) -> int:
    """The append a file belongs to (0: the first export's ``part-N``)."""
    if not name.startswith(INCREMENT + "-"):
        return 0
    digits = name.split("-")[1]
    return int(digits) if digits.isdigit() else -1


def committed_files(lake: Path) -> list[Path]:
    """The event files of committed appends, in a stable order."""
    manifest = read_manifest(lake) or {}
    last = int(manifest.get("appended", 0))
    files = sorted((lake / EVENTS_DIR).glob(f"{PARTITION}=*/*.parquet"))
    return [f for f in files if 0 <= _append_of(f.name) <= last]


@contextmanager
def locked(lake: Path) -> Iterator[None]:
    """The lake's lock file held: one append at a time, from any process on any node
    that shares the filesystem's locks (local disks, NFS v4)."""
    with open(lake / _LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


#: ``write(folder, after_seq, seq_offset, prefix)``: a store's export_events.
Writer = Callable[[Path, int | None, int, str], dict[str, Any]]


def append(lake: Path, feeder: str, write: Writer) -> ExportReport:
    """Add to the lake the events ``feeder`` (one store) took since its last append;
    the report counts what this append wrote (``seconds`` left to the caller)."""
    with locked(lake):
        manifest = read_manifest(lake)
        if manifest is None:
            raise LakeError(f"{lake} is not a lake (no {MANIFEST}); export into a new folder first")
        feeders: dict[str, int | None] = dict(manifest.get("feeders", {}))
        number = int(manifest.get("appended", 0)) + 1
        prefix = f"{INCREMENT}-{number:06d}"
        for stale in (lake / EVENTS_DIR).glob(f"{PARTITION}=*/{prefix}-*.parquet"):
            stale.unlink()  # an append that died before its commit
        staging = lake / _STAGING / prefix
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            written = write(staging, feeders.get(feeder), int(manifest.get("max_seq") or 0), prefix)
            if written["events"]:
                for file in sorted((staging / EVENTS_DIR).glob(f"{PARTITION}=*/*.parquet")):
                    day = lake / EVENTS_DIR / file.parent.name
                    day.mkdir(parents=True, exist_ok=True)
                    os.replace(file, day / file.name)
        finally:
            shutil.rmtree(lake / _STAGING, ignore_errors=True)
        if not written["events"]:
            return ExportReport(str(lake), 0, 0, None, None, manifest.get("max_seq"), 0.0, number - 1)
        days = sum(1 for _ in (lake / EVENTS_DIR).glob(f"{PARTITION}=*"))
        firsts = [d for d in (manifest.get("first_day"), written["first_day"]) if d]
        lasts = [d for d in (manifest.get("last_day"), written["last_day"]) if d]
        report = ExportReport(
            str(lake), written["events"], days, min(firsts), max(lasts), written["max_seq"], 0.0, number
        )
        feeders[feeder] = written["source_max_seq"]
        total = ExportReport(
            str(lake), int(manifest.get("events", 0)) + written["events"], days, min(firsts), max(lasts),
            written["max_seq"], 0.0, number,
        )  # fmt: skip
        _write_manifest(lake, _manifest(total, feeders))
        return report


def discard(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
