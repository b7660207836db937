"""Typed values from file columns, vectorised, with a reason for every cell that fails.

The fast path converts a whole column with one Arrow kernel. Only when that fails (a
single bad cell fails the kernel) does a column go cell by cell, so one bad row costs
a slower conversion of its column, never a crash and never the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

_TIME = pa.timestamp("us")


@dataclass
class Parsed:
    """A converted column: its values and the rows that could not be converted."""

    values: list[Any]
    errors: dict[int, str] = field(default_factory=dict)


def _chunked(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks()
    return column


def text(column: pa.ChunkedArray | pa.Array) -> list[str | None]:
    """Cells as trimmed text; empty cells are ``None``."""
    return text_array(column).to_pylist()


def text_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Cells as a trimmed string array; empty cells are null."""
    array = _chunked(column)
    if pa.types.is_timestamp(array.type) or pa.types.is_date(array.type):
        return pa.array([None if v is None else v.isoformat() for v in array.to_pylist()], pa.string())
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.string())
    array = pc.utf8_trim_whitespace(array)
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, array.type), array)


def number(column: pa.ChunkedArray | pa.Array, name: str) -> Parsed:
    """Cells as floats (``None`` when empty); text that is not a finite number is an error."""
    array = _chunked(column)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type) or pa.types.is_decimal(array.type):
        values = pc.cast(array, pa.float64()).to_pylist()
    else:
        try:
            values = pc.cast(pc.utf8_trim_whitespace(pc.cast(array, pa.string())), pa.float64()).to_pylist()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _numbers_one_by_one(text(array), name)
    parsed = Parsed(values)
    for row, value in enumerate(values):
        if value is not None and not math.isfinite(value):
            parsed.errors[row] = f"{name} must be a finite number, got {value}"
            values[row] = None
    return parsed


def _numbers_one_by_one(cells: list[str | None], name: str) -> Parsed:
    parsed = Parsed([None] * len(cells))
    for row, cell in enumerate(cells):
        if cell is None:
            continue
        try:
            value = float(cell)
        except ValueError:
            parsed.errors[row] = f"{name} {cell[:40]!r} is not a number"
            continue
        if not math.isfinite(value):
            parsed.errors[row] = f"{name} must be a finite number, got {cell[:40]!r}"
            continue
        parsed.values[row] = value
    return parsed


@dataclass
class Times:
    """A converted time column: naive UTC timestamps, nulls where missing or bad."""

    array: pa.Array
    errors: dict[int, str] = field(default_factory=dict)


def timestamps(column: pa.ChunkedArray | pa.Array, name: str, date_format: str | None) -> Times:
    """Cells as naive UTC ``timestamp[us]``.

    Args:
        date_format: a ``strptime`` format (``%Y%m%d``); without one, ISO-8601 dates and
            date-times (with or without an offset) are accepted.
    """
    array = _chunked(column)
    if pa.types.is_timestamp(array.type):
        return Times(_naive_utc(array))
    if pa.types.is_date(array.type):
        return Times(pc.cast(array, _TIME))
    cells = pc.utf8_trim_whitespace(pc.cast(array, pa.string()))
    cells = pc.if_else(pc.equal(cells, ""), pa.scalar(None, pa.string()), cells)
    if date_format:
        parsed = pc.strptime(cells, format=date_format, unit="us", error_is_null=True)
        bad = pc.and_(pc.is_null(parsed), pc.is_valid(cells))
        times = Times(parsed)
        if pc.any(bad).as_py():
            raw = cells.to_pylist()
            for row in pc.indices_nonzero(bad).to_pylist():
                times.errors[row] = f"{name} {raw[row][:40]!r} does not match --date-format {date_format}"
        return times
    for target in (_TIME, pa.timestamp("us", tz="UTC")):
        try:
            return Times(_naive_utc(pc.cast(cells, target)))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return _times_one_by_one(cells.to_pylist(), name)


def _naive_utc(array: pa.Array) -> pa.Array:
    if array.type.tz is not None:
        array = pc.cast(array, pa.timestamp(array.type.unit, tz="UTC"))
        array = pa.Array.from_buffers(
            pa.timestamp(array.type.unit), len(array), array.buffers(), array.null_count
        )
    return pc.cast(array, _TIME)


def _times_one_by_one(cells: list[str | None], name: str) -> Times:
    values: list[datetime | None] = [None] * len(cells)
    errors: dict[int, str] = {}
    for row, cell in enumerate(cells):
        if cell is None:
            continue
        try:
            value = datetime.fromisoformat(cell)
        except ValueError:
            errors[row] = (
                f"{name} {cell[:40]!r} is not an ISO-8601 date or date-time "
                "(use --date-format for others, e.g. %Y%m%d)"
            )
            continue
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        values[row] = value
    return Times(pa.array(values, type=_TIME), errors)
