"""Derived tables and meta values kept beside a lake, for engines that read files.

The Spark store (store/spark.py) keeps what the pipeline derives (event facts, the
identity graph, profiles) as Parquet folders under ``<lake>/_patron/tables``, and which
folders make up each table, with the store's meta values, in a *catalog*: one JSON
document per committed write, numbered, under ``<lake>/_patron/catalog``::

    _patron/catalog/00000000000000000012.json   {"tables": {"profiles": ["tables/profiles/v-..."]}, "meta": {...}}
    _patron/tables/profiles/v-.../part-....parquet

A write never changes a folder a committed catalog names: it writes new folders, then
creates the next numbered document, which is the commit. The document is written
whole into a hidden file and linked to its number (``os.link``), which fails when the
number exists, so two writers can never both commit the same version, and a reader
never sees half a document; it takes the highest number. A write that fails before
its commit leaves only folders no catalog names, which the next write removes.

Delta Lake or Iceberg would give the same guarantees with more (time travel, row-level
deletes), but their Spark integrations are jars fetched from Maven at session start,
which Patron may not download at run time (decision 008). The lake's path must be a
filesystem every Spark process sees (local, NFS, a FUSE mount of object storage).
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from patron.store.exceptions import LakeError

PATRON_DIR = "_patron"
CATALOG_DIR = "catalog"
TABLES_DIR = "tables"
#: Committed catalogs kept besides the newest: a reader that listed an older one while
#: a writer committed still finds the folders it names.
KEEP_CATALOGS = 3


@dataclass
class Snapshot:
    """One committed state: the folders of every table (relative to ``_patron``) and
    the meta values."""

    version: int
    tables: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    def copy(self) -> Snapshot:
        return Snapshot(self.version, {k: list(v) for k, v in self.tables.items()}, dict(self.meta))


class Catalog:
    """The catalog of derived tables under ``<lake>/_patron``."""

    def __init__(self, lake: Path) -> None:
        self.root = lake / PATRON_DIR
        self._catalogs = self.root / CATALOG_DIR
        try:
            self._catalogs.mkdir(parents=True, exist_ok=True)
            (self.root / TABLES_DIR).mkdir(exist_ok=True)
        except OSError as error:
            raise LakeError(f"cannot create the catalog in {self.root}: {error.strerror or error}") from None

    def _versions(self) -> list[int]:
        return sorted(int(p.stem) for p in self._catalogs.glob("*.json") if p.stem.isdigit())

    def current(self) -> Snapshot:
        """The newest committed snapshot (version -1, empty, before the first commit)."""
        versions = self._versions()
        if not versions:
            return Snapshot(-1)
        document = orjson.loads((self._catalogs / f"{versions[-1]:020d}.json").read_bytes())
        return Snapshot(versions[-1], document["tables"], document["meta"])

    def new_folder(self, table: str) -> tuple[str, Path]:
        """A fresh folder for rows of ``table``: its name relative to ``_patron``, and its path."""
        relative = f"{TABLES_DIR}/{table}/v-{uuid.uuid4().hex}"
        return relative, self.root / relative

    def path(self, relative: str) -> Path:
        return self.root / relative

    def commit(self, snapshot: Snapshot) -> Snapshot:
        """Commit ``snapshot`` as the version after the one it was read at.

        Raises:
            LakeError: another writer committed meanwhile (nothing of this write is kept).
        """
        version = snapshot.version + 1
        body = orjson.dumps({"tables": snapshot.tables, "meta": snapshot.meta}, option=orjson.OPT_SORT_KEYS)
        staged = self._catalogs / f".{version:020d}.{uuid.uuid4().hex}.tmp"
        staged.write_bytes(body)
        try:
            os.link(staged, self._catalogs / f"{version:020d}.json")
        except FileExistsError:
            raise LakeError(
                f"another process wrote to the store {self.root.parent} meanwhile; run the command again"
            ) from None
        finally:
            staged.unlink(missing_ok=True)
        committed = Snapshot(version, snapshot.tables, snapshot.meta)
        self._collect_garbage(committed)
        return committed

    def _collect_garbage(self, newest: Snapshot) -> None:
        """Remove old catalogs and the folders no kept catalog names (best effort)."""
        versions = self._versions()
        kept = [v for v in versions if v > newest.version - KEEP_CATALOGS]
        named: set[str] = set()
        for version in kept:
            try:
                document = orjson.loads((self._catalogs / f"{version:020d}.json").read_bytes())
            except OSError:
                continue
            named.update(folder for folders in document["tables"].values() for folder in folders)
        for version in versions:
            if version not in kept:
                (self._catalogs / f"{version:020d}.json").unlink(missing_ok=True)
        tables = self.root / TABLES_DIR
        for table in tables.iterdir() if tables.exists() else []:
            for folder in table.iterdir():
                if f"{TABLES_DIR}/{table.name}/{folder.name}" not in named:
                    shutil.rmtree(folder, ignore_errors=True)
            if not any(table.iterdir()):
                table.rmdir()

    def discard(self, relatives: list[str]) -> None:
        """Remove folders a failed write created."""
        for relative in relatives:
            shutil.rmtree(self.root / relative, ignore_errors=True)
