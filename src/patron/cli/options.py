"""Options shared by every command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from patron.config import Settings
from patron.workspace import Workspace

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Store file (default ./patron.duckdb, or PATRON_STORE); with --backend spark, the lake folder.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def workspace(store: Path | None) -> Workspace:
    """A workspace on the store named by --store, else PATRON_STORE, else the default."""
    return Workspace(Settings().with_store(store))
