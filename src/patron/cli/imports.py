"""`patron import ...` (placeholder, filled by the importers work)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Import events, orders and customers from files.", no_args_is_help=True)
