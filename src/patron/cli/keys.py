"""`patron keys ...`: write keys for sources, read and admin tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json, print_table

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Key name; for write keys also the source name.")],
    scope: Annotated[str, typer.Option("--scope", help="write (collect events), read, or admin.")] = "write",
    source: Annotated[str | None, typer.Option("--source", help="Source the write key feeds (default: the name).")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it. It is shown once: only its hash is stored."""
    with workspace(store) as ws:
        new = ws.keys.create(name, scope, source_id=source)
    if as_json:
        print_json({"key": new.key, "name": new.name, "scope": new.scope})
    else:
        console.print(new.key, highlight=False)


@app.command("list")
def list_keys(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """List keys (names, scopes, prefixes; never the keys)."""
    with workspace(store) as ws:
        records = ws.keys.list()
    rows = [
        {
            "name": r.name,
            "scope": r.scope,
            "source": r.source_id,
            "prefix": r.key_prefix,
            "created_at": r.created_at,
            "revoked_at": r.revoked_at,
        }
        for r in records
    ]
    if as_json:
        print_json(rows)
    else:
        print_table("API keys", ["name", "scope", "source", "prefix", "created", "revoked"], [list(r.values()) for r in rows])


@app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Name of the key to revoke.")],
    store: StoreOption = None,
) -> None:
    """Revoke a key; requests carrying it get 401 from then on."""
    with workspace(store) as ws:
        ws.keys.revoke(name)
    console.print(f"revoked {name}")
