"""Column mappings given as ``--map field=Column``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from patron.collect.importers.exceptions import ImportFileError, MissingColumn


def parse_pairs(path: Path, pairs: Iterable[str]) -> dict[str, str]:
    """``["order_id=OrderNo", ...]`` as ``{"order_id": "OrderNo"}``.

    Raises:
        ImportFileError: a pair without ``=`` or with an empty side.
    """
    mapping: dict[str, str] = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ImportFileError(path, f"--map {pair!r} must look like field=Column")
        mapping[field] = column
    return mapping


def check_columns(
    path: Path, mapping: Mapping[str, str], columns: Sequence[str], hint: str
) -> None:
    """Every mapped column exists in the file.

    Raises:
        MissingColumn: naming the first missing one and listing the file's columns.
    """
    for field, column in mapping.items():
        if column not in columns:
            raise MissingColumn(path, field, column, columns, hint)
