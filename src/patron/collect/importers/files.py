"""Reading import files: which format a file is, and its rows or messages.

Tables (CSV, Parquet) are read with pyarrow, whole, because orders group their lines
across the file. CSV cells are read as text so that ids such as ``00123`` keep their
leading zeros; empty cells become nulls. Message files (JSONL, JSON, Parquet) are
streamed so a large file never sits in memory twice.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.collect.importers.exceptions import ImportFileError

_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
_READ_BATCH = 20_000


def file_format(path: Path, allowed: tuple[str, ...]) -> str:
    """The format of ``path`` from its extension (``.gz`` allowed for text formats).

    Raises:
        ImportFileError: the file is missing, not a file, or of a format not in ``allowed``.
    """
    if not path.exists():
        raise ImportFileError(path, "no such file")
    if not path.is_file():
        raise ImportFileError(path, "not a file")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = _FORMATS.get(suffixes[-1]) if suffixes else None
    expected = ", ".join(sorted(ext for ext, fmt in _FORMATS.items() if fmt in allowed))
    if kind is None or kind not in allowed:
        raise ImportFileError(path, f"unknown file type; expected one of {expected}")
    if kind == "parquet" and path.suffix.lower() == ".gz":
        raise ImportFileError(path, "Parquet files are compressed inside; do not gzip them")
    if path.stat().st_size == 0:
        raise ImportFileError(path, "the file is empty")
    return kind


def read_table(path: Path) -> pa.Table:
    """A CSV or Parquet file as an Arrow table (CSV cells as text).

    Raises:
        ImportFileError: unknown type, unparseable, or without rows.
    """
    kind = file_format(path, ("csv", "parquet"))
    try:
        table = _read_csv(path) if kind == "csv" else pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, UnicodeDecodeError) as error:
        if "invalid UTF8" in str(error) or isinstance(error, UnicodeDecodeError):
            raise ImportFileError(path, "is not UTF-8 text; save it as UTF-8 CSV") from None
        what = "CSV" if kind == "csv" else "Parquet"
        raise ImportFileError(path, f"not a readable {what} file ({_first_line(error)})") from None
    if table.num_rows == 0:
        raise ImportFileError(path, "the file has no rows")
    return table


def _read_csv(path: Path) -> pa.Table:
    # A first, tiny read learns the column names, so every column can be read as text.
    options = pacsv.ReadOptions(block_size=1 << 16)
    with pacsv.open_csv(path, read_options=options) as reader:
        names = reader.schema.names
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise pa.ArrowInvalid(f"duplicate column names: {', '.join(duplicated)}")
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names}, strings_can_be_null=True
    )
    return pacsv.read_csv(path, convert_options=convert)


@dataclass(frozen=True, slots=True)
class BadItem:
    """An item of a message file that is not JSON at all."""

    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class MessageBlock:
    """Messages read together, with their position in the file and any batch envelope."""

    items: list[tuple[int, Any]]
    """``(position, message or BadItem)``: JSONL line number (1-based), else 0-based index."""
    context: dict[str, Any] | None = None
    sent_at: Any = None


def count_messages(path: Path) -> int | None:
    """How many messages a Parquet file holds, from its footer; ``None`` for text files."""
    if file_format(path, ("jsonl", "json", "parquet")) != "parquet":
        return None
    try:
        return int(pq.ParquetFile(path).metadata.num_rows)
    except (pa.ArrowInvalid, OSError):
        return None  # reading it will say what is wrong


def read_messages(path: Path) -> Iterator[MessageBlock]:
    """The messages of a JSONL, JSON (array or ``{"batch": [...]}``) or Parquet file.

    Raises:
        ImportFileError: unknown type, a JSON file that is not an array or batch,
            an unreadable Parquet file, or a file without messages.
    """
    kind = file_format(path, ("jsonl", "json", "parquet"))
    readers = {"jsonl": _jsonl, "json": _json, "parquet": _parquet}
    empty = True
    for block in readers[kind](path):
        if block.items:
            empty = False
        yield block
    if empty:
        raise ImportFileError(path, "the file holds no messages")


def _open_text(path: Path) -> IO[bytes]:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _jsonl(path: Path) -> Iterator[MessageBlock]:
    items: list[tuple[int, Any]] = []
    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    items.append((number, orjson.loads(line)))
                except orjson.JSONDecodeError as error:
                    text = line.decode("utf-8", "replace").rstrip("\r\n")
                    items.append((number, BadItem(f"line {number} is not valid JSON: {error}", text)))
                if len(items) >= _READ_BATCH:
                    yield MessageBlock(items)
                    items = []
    except (OSError, EOFError) as error:  # a truncated or fake .gz
        raise ImportFileError(path, f"cannot be read ({_first_line(error)})") from None
    yield MessageBlock(items)


def _json(path: Path) -> Iterator[MessageBlock]:
    try:
        with _open_text(path) as handle:
            document = orjson.loads(handle.read())
    except orjson.JSONDecodeError as error:
        raise ImportFileError(path, f"not valid JSON ({error})") from None
    except (OSError, EOFError) as error:
        raise ImportFileError(path, f"cannot be read ({_first_line(error)})") from None
    context = sent_at = None
    if isinstance(document, dict) and isinstance(document.get("batch"), list):
        context = document.get("context")
        if context is not None and not isinstance(context, dict):
            raise ImportFileError(path, "the batch's context must be an object")
        sent_at = document.get("sentAt")
        document = document["batch"]
    if not isinstance(document, list):
        raise ImportFileError(
            path, 'a .json file must hold an array of messages or {"batch": [...]}; '
            "use .jsonl for one message per line"
        )
    for start in range(0, len(document), _READ_BATCH):
        chunk = document[start : start + _READ_BATCH]
        yield MessageBlock(list(enumerate(chunk, start=start)), context, sent_at)


def _parquet(path: Path) -> Iterator[MessageBlock]:
    try:
        parquet = pq.ParquetFile(path)
        position = 0
        for batch in parquet.iter_batches(batch_size=_READ_BATCH):
            items = []
            for row in batch.to_pylist():
                items.append((position, _message_from_parquet(row)))
                position += 1
            yield MessageBlock(items)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise ImportFileError(path, f"not a readable Parquet file ({_first_line(error)})") from None


_OBJECT_FIELDS = ("properties", "traits", "context", "integrations")


def _message_from_parquet(row: dict[str, Any]) -> dict[str, Any] | BadItem:
    """A Parquet row as a message: nulls dropped (structs force every key on every row),
    times as ISO text, and object fields stored as JSON text decoded."""
    message = _plain(row)
    for key in _OBJECT_FIELDS:
        value = message.get(key)
        if isinstance(value, str):
            try:
                message[key] = orjson.loads(value)
            except orjson.JSONDecodeError as error:
                return BadItem(f"{key} is text but not JSON ({error})", orjson.dumps(message).decode())
    return message


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def iso_utc(value: datetime) -> str:
    """ISO-8601 text of a datetime; naive ones are taken as UTC."""
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    return value.isoformat()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().split("\n")[0]
    return text[:200] or type(error).__name__
