"""How commands print: Rich tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=_default).decode() + "\n")


def print_jsonl(rows: Iterable[Any]) -> None:
    for row in rows:
        sys.stdout.write(orjson.dumps(row, default=_default).decode() + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else _cell(v) for v in row))
    console.print(table)


def print_error(message: str) -> None:
    errors.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)
