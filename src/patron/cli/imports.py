"""`patron import ...`: events, orders and customers from files."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json
from patron.collect.importers.files import file_format
from patron.collect.importers.mapping import parse_pairs
from patron.collect.importers.orders import ORDER_FIELDS
from patron.collect.importers.report import ImportReport

app = typer.Typer(help="Import events, orders and customers from files.", no_args_is_help=True)

FileArgument = Annotated[Path, typer.Argument(help="The file to import.", show_default=False)]
MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="field=Column, repeatable: which file column holds a field.", show_default=False),
]


class ProgressBar:
    """Importer progress drawn by Rich on stderr; silent when stderr is not a terminal."""

    def __init__(self) -> None:
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not sys.stderr.isatty(),
        )
        self._task: TaskID | None = None

    def start(self, description: str, total: int | None) -> None:
        if self._task is not None:  # the previous stage is done: show it full
            done = self._bar.tasks[-1].total or 1
            self._bar.update(self._task, total=done, completed=done)
        self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, amount)

    def __enter__(self) -> ProgressBar:
        self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()


def _finish(report: ImportReport, as_json: bool) -> None:
    if as_json:
        print_json(report.as_json())
    else:
        console.print(report.summary(), highlight=False, soft_wrap=True)


@app.command("events")
def events(
    file: FileArgument,
    source: Annotated[str, typer.Option("--source", help="Source id the events are stored under.")] = "import",
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Segment-spec messages from JSONL (.jsonl, .ndjson), JSON (an array or {"batch": [...]}) or Parquet.

    Every message is validated as by the tracking API; rejected ones are kept with their
    line or index (`patron events failed`). Messages without a messageId get one from
    their content, so importing the same file again stores nothing new.
    """
    file_format(file, ("jsonl", "json", "parquet"))  # a bad path fails before the store opens
    with workspace(store) as ws, ProgressBar() as bar:
        report = ws.imports.events(file, source_id=source, progress=bar)
    _finish(report, as_json)


@app.command("orders", help=(
    "Orders from CSV or Parquet, each an `Order Completed` event (Segment e-commerce spec).\n\n"
    "Rows sharing an order_id are the lines of one order when product columns are mapped. "
    "Re-importing adds nothing: orders dedupe by order id.\n\n"
    "Fields for --map field=Column (default: a column of the same name): "
    + "; ".join(f"{name}: {text}" for name, text in ORDER_FIELDS.items())
))
def orders(
    file: FileArgument,
    mapping: MapOption = None,
    currency: Annotated[str, typer.Option("--currency", help="Currency of orders without a currency column.")] = "USD",
    date_format: Annotated[
        str | None,
        typer.Option("--date-format", help="strptime format of the timestamp column, e.g. %Y%m%d (default: ISO-8601).", show_default=False),
    ] = None,
    source: Annotated[str, typer.Option("--source", help="Source id the orders are stored under.")] = "import:orders",
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    pairs = parse_pairs(file, mapping or [])
    file_format(file, ("csv", "parquet"))
    with workspace(store) as ws, ProgressBar() as bar:
        report = ws.imports.orders(
            file, source_id=source, mapping=pairs, currency=currency, date_format=date_format, progress=bar
        )
    _finish(report, as_json)


@app.command("customers")
def customers(
    file: FileArgument,
    id_column: Annotated[str, typer.Option("--id-column", help="Column with the record's id in the CRM (stored as an external id).")],
    mapping: MapOption = None,
    source: Annotated[str, typer.Option("--source", help="Source id; the external id's type is <source>_id.")] = "crm",
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """CRM records from CSV or Parquet, one `identify` per row.

    Columns become traits by name (firstName, lastName, email, phone, birthday, and
    address.street/.city/.postalCode/.state/.country nest into address); --map
    trait=Column renames. The id is stored as context.externalIds, not as userId, so
    records are never merged just by being imported. Empty cells are left out.
    """
    pairs = parse_pairs(file, mapping or [])
    file_format(file, ("csv", "parquet"))
    with workspace(store) as ws, ProgressBar() as bar:
        report = ws.imports.customers(file, id_column=id_column, source_id=source, mapping=pairs, progress=bar)
    _finish(report, as_json)
