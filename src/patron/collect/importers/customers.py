"""``patron import customers``: CRM exports (CSV, Parquet) as one ``identify`` per row.

The record's id in the CRM is stored as an external id, never as ``userId``::

    {"type": "identify", "traits": {...},
     "context": {"externalIds": [{"id": "C-17", "type": "crm_id",
                                  "collection": "users", "encoding": "none"}]}}

so importing two CRM records never merges them merely because they were imported;
identity resolution decides later. Columns become traits under their own names
(Segment's reserved names such as ``firstName``, ``email``, ``phone``, ``birthday``
work as they are); a dotted name such as ``address.city`` becomes a nested object
(``{"address": {"city": ...}}``); ``--map trait=Column`` renames. Empty cells are left
out. In CSV, text stays text (postal codes and phone numbers keep their zeros) except
custom columns whose cells are plain numbers, and ``age``; Parquet keeps its types.

The message id hashes the source, the record id and the traits, so importing the same
file again stores nothing, while a changed row stores one new identify.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from patron import __version__
from patron.collect.importers import columns as cols
from patron.collect.importers.exceptions import ImportFileError, MissingColumn
from patron.collect.importers.files import file_format, iso_utc, read_table
from patron.collect.importers.mapping import check_columns
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

DEFAULT_SOURCE = "crm"
#: Segment's reserved traits that are text even when they look like numbers.
TEXT_TRAITS = frozenset(
    {
        "email", "phone", "firstName", "lastName", "name", "username", "title", "website",
        "description", "gender", "avatar", "birthday", "createdAt", "id",
        "address.street", "address.city", "address.postalCode", "address.state",
        "address.country", "company.name", "company.id", "company.industry",
    }
)
_PLAIN_NUMBER = re.compile(r"^-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?$")


@dataclass(frozen=True)
class CustomerOptions:
    """How to read a CRM export.

    Attributes:
        id_column: the column holding the record's id in the CRM.
        source_id: the source the identifies are stored under; the external id's type
            is ``<source_id>_id``.
        mapping: trait -> column, for columns whose names are not the trait names.
    """

    id_column: str
    source_id: str = DEFAULT_SOURCE
    mapping: Mapping[str, str] = field(default_factory=dict)
    max_future: timedelta = timedelta(hours=24)
    max_message_bytes: int = 32 * 1024


def import_customers(
    store: Store, path: Path, options: CustomerOptions, progress: Progress | None = None
) -> ImportReport:
    """Import a CRM export; see the module docstring for the messages it makes.

    Raises:
        ImportFileError: the file cannot be read, or the id column or a mapped column
            is missing.
    """
    progress = progress or NoProgress()
    progress.start(f"reading {path.name}", None)
    table = read_table(path)
    names = table.column_names
    if options.id_column not in names:
        raise MissingColumn(path, "--id-column", options.id_column, names, "the record id")
    check_columns(path, options.mapping, names, "--map trait=Column")
    traits = _trait_columns(path, names, options)
    csv = file_format(path, ("csv", "parquet")) == "csv"

    report = ImportReport("customers", str(path), options.source_id, unit="rows")
    report.read = table.num_rows
    received_at = utc_now()
    writer = ChunkWriter(store, report, received_at)
    validator = MessageValidator(
        max_message_bytes=options.max_message_bytes,
        max_future=options.max_future,
        external_ids_identify=True,
    )
    id_type = f"{options.source_id}_id"
    library = {"name": "patron-import", "version": __version__}
    progress.start(f"importing {path.name}", table.num_rows)
    nest = _nester([trait for trait, _ in traits])
    for offset in range(0, table.num_rows, CHUNK_SIZE):
        chunk = table.slice(offset, CHUNK_SIZE)
        ids = cols.text(chunk[options.id_column])
        values = [_values(chunk[column], trait, csv) for trait, column in traits]
        rows: list[EventRow] = []
        rejections: list[Rejection] = []
        for i, record_id in enumerate(ids):
            row_number = offset + i + 1
            if record_id is None:
                raw = orjson.dumps(chunk.slice(i, 1).to_pylist()[0], default=str).decode()
                reason = f"row {row_number}: the id column {options.id_column!r} is empty"
                rejections.append(Rejection(row_number, "context.externalIds", reason, raw))
                continue
            trait_values = nest([column[i] for column in values])
            message = {
                "type": "identify",
                "messageId": _message_id(options.source_id, record_id, trait_values),
                "traits": trait_values,
                "context": {
                    "externalIds": [
                        {"id": record_id, "type": id_type, "collection": "users", "encoding": "none"}
                    ],
                    "library": library,
                },
            }
            outcome = validator.check(
                message, source_id=options.source_id, received_at=received_at, index=row_number
            )
            if isinstance(outcome, Rejection):
                rejections.append(outcome)
            else:
                rows.append(outcome)
        writer.write(rows_to_table(rows), rejections)
        progress.advance(chunk.num_rows)
    return report


def _trait_columns(path: Path, names: list[str], options: CustomerOptions) -> list[tuple[str, str]]:
    """``(trait, column)`` pairs: mapped traits, then every other column by its name."""
    pairs = list(options.mapping.items())
    used = {column for _, column in pairs} | {options.id_column}
    taken = {trait for trait, _ in pairs}
    for name in names:
        if name not in used and name not in taken:
            pairs.append((name, name))
    for trait, _ in pairs:
        if not trait or trait.startswith(".") or trait.endswith(".") or ".." in trait:
            raise ImportFileError(path, f"trait name {trait!r} is not usable")
    return pairs


def _values(column: pa.ChunkedArray, trait: str, csv: bool) -> list[Any]:
    """One column's cells as trait values (``None`` for empty cells)."""
    if csv or pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        cells: list[Any] = cols.text(column)
        if not csv:
            return cells
        if trait == "age":
            return [int(c) if c is not None and c.isdigit() else c for c in cells]
        if trait in TEXT_TRAITS:
            return cells
        return [_number_or_text(c) for c in cells]
    return [_plain(v) for v in column.to_pylist()]


def _number_or_text(cell: str | None) -> Any:
    if cell is None or not _PLAIN_NUMBER.match(cell):
        return cell
    return float(cell) if "." in cell else int(cell)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        if isinstance(value, str):
            value = value.strip() or None
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _nester(names: list[str]) -> Callable[[list[Any]], dict[str, Any]]:
    """A function from one row's values (in ``names`` order) to its traits, as :func:`_nest`.

    The common shape (plain names, and ``parent.leaf`` names whose parent is not also a
    plain name) is built without splitting names per row; any other falls back to
    :func:`_nest`.
    """
    parents = {name.split(".")[0] for name in names if "." in name}
    if any(name.count(".") > 1 or name in parents for name in names):
        return lambda row: _nest(zip(names, row, strict=True))
    plan: list[tuple[str, int | list[tuple[str, int]]]] = []
    groups: dict[str, list[tuple[str, int]]] = {}
    for i, name in enumerate(names):
        if "." not in name:
            plan.append((name, i))
            continue
        parent, leaf = name.split(".")
        if parent not in groups:
            groups[parent] = []
            plan.append((parent, groups[parent]))
        groups[parent].append((leaf, i))

    def nest(row: list[Any]) -> dict[str, Any]:
        traits: dict[str, Any] = {}
        for name, where in plan:
            if isinstance(where, int):
                if row[where] is not None:
                    traits[name] = row[where]
            else:
                node = {leaf: row[i] for leaf, i in where if row[i] is not None}
                if node:
                    traits[name] = node
        return traits

    return nest


def _nest(pairs: Any) -> dict[str, Any]:
    """Traits from ``(name, value)`` pairs; ``a.b`` nests; ``None`` values are left out."""
    traits: dict[str, Any] = {}
    for name, value in pairs:
        if value is None:
            continue
        if "." not in name:
            traits[name] = value
            continue
        *parents, leaf = name.split(".")
        node = traits
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return traits


def _message_id(source_id: str, record_id: str, traits: dict[str, Any]) -> str:
    content = orjson.dumps([source_id, record_id, traits], option=orjson.OPT_SORT_KEYS)
    return f"crm-{hashlib.sha256(content).hexdigest()[:32]}"
