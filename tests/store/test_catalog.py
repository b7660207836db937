"""The catalog of a lake's derived tables: numbered snapshots, one commit at a time."""

from __future__ import annotations

from pathlib import Path

import pytest

from patron.store.catalog import KEEP_CATALOGS, Catalog
from patron.store.exceptions import LakeError


def folder_with_file(catalog: Catalog, table: str) -> str:
    relative, path = catalog.new_folder(table)
    path.mkdir(parents=True)
    (path / "part-0.parquet").write_bytes(b"rows")
    return relative


def test_commits_are_numbered_and_the_newest_is_current(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    assert catalog.current().version == -1 and not catalog.current().tables
    work = catalog.current().copy()
    work.tables["profiles"] = [folder_with_file(catalog, "profiles")]
    work.meta["profiles_seq"] = "10"
    first = catalog.commit(work)
    assert first.version == 0
    again = Catalog(tmp_path).current()  # another process sees the same
    assert (again.version, again.tables, again.meta) == (0, first.tables, {"profiles_seq": "10"})
    work = again.copy()
    work.meta["profiles_seq"] = "12"
    assert catalog.commit(work).version == 1 and Catalog(tmp_path).current().meta["profiles_seq"] == "12"
    assert again.meta["profiles_seq"] == "10"  # a snapshot never changes under its reader


def test_two_writers_from_the_same_version_cannot_both_commit(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    base = catalog.current()
    mine, theirs = base.copy(), base.copy()
    mine.meta["who"], theirs.meta["who"] = "mine", "theirs"
    catalog.commit(mine)
    with pytest.raises(LakeError, match="another process wrote"):
        catalog.commit(theirs)
    assert catalog.current().meta == {"who": "mine"}
    assert not list((catalog.root / "catalog").glob(".*"))  # no staged document left


def test_folders_no_kept_catalog_names_are_removed(tmp_path: Path) -> None:
    catalog = Catalog(tmp_path)
    snapshot = catalog.current()
    written = []
    for _ in range(KEEP_CATALOGS + 2):
        work = snapshot.copy()
        work.tables["t"] = [folder_with_file(catalog, "t")]
        written.append(work.tables["t"][0])
        snapshot = catalog.commit(work)
    present = [r for r in written if catalog.path(r).exists()]
    assert present == written[-KEEP_CATALOGS:]  # older readers still find recent folders
    assert len(list((catalog.root / "catalog").glob("*.json"))) == KEEP_CATALOGS
    orphan = folder_with_file(catalog, "t")  # as left by a write that died before its commit
    catalog.commit(snapshot.copy())
    assert not catalog.path(orphan).exists() and catalog.path(written[-1]).exists()
    gone = folder_with_file(catalog, "u")
    catalog.discard([gone])
    assert not catalog.path(gone).exists()


def test_a_lake_that_cannot_be_written_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(LakeError, match="cannot create the catalog"):
        Catalog(tmp_path / "file")
