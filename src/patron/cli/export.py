"""`patron export ...`: hand data over to other engines and tools."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json

app = typer.Typer(help="Export data for other engines (a lake of Parquet files).", no_args_is_help=True)


@app.command("events")
def events(
    to: Annotated[
        Path, typer.Option("--to", help="Folder to create (new or empty): events/day=YYYY-MM-DD/*.parquet.")
    ],
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Add the events stored since this store's last append to an existing lake (several stores may feed one).",
        ),
    ] = False,
    feeder: Annotated[
        str | None, typer.Option("--feeder", help="This store's name in the lake (default: host name and store path).")
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write the event log as Parquet partitioned by day, the lake a Spark store reads
    (PATRON_BACKEND=spark, PATRON_STORE=that folder). All or nothing."""
    with workspace(store) as ws:
        report = ws.events.export(to, append=append, feeder=feeder)
    if as_json:
        print_json(report.as_json())
        return
    span = f", {report.first_day} to {report.last_day}" if report.first_day else ""
    verb = f"appended (append {report.appended})" if report.appended else "exported"
    console.print(f"{verb} {report.events:,} events in {report.days:,} days{span} to {report.path} in {report.seconds} s")
