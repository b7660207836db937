"""`patron profiles ...`: build the single customer view and look at one customer."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json, print_table

app = typer.Typer(help="Build and read customer profiles (the single customer view).", no_args_is_help=True)


@app.command("build")
def build(
    no_resolve: Annotated[bool, typer.Option("--no-resolve", help="Use the identity graph as it is.")] = False,
    full: Annotated[bool, typer.Option("--full", help="Resolve and rebuild everything (default: only what changed).")] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resolve identities, then bring merged traits, computed traits and consent up to
    date: incremental (only profiles with new events or changed identifiers), or every
    profile with --full."""
    with workspace(store) as ws, console.status("building profiles..."):
        report = ws.profiles.build(resolve=not no_resolve, full=full)
    if as_json:
        print_json(report.as_json())
    else:
        console.print(
            f"{report.mode} build: {report.rebuilt:,} profiles computed, {report.profiles:,} in all, "
            f"{report.traits:,} traits, in {report.seconds} s",
            highlight=False,
        )


@app.command("show")
def show(
    key: Annotated[str, typer.Argument(help="A profile id or an identifier (email:ann@shop.com, user_id:42, or a bare value).")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Timeline events per page.")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Timeline events to skip.")] = 0,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Everything about one customer: identifiers, traits and where they came from,
    computed traits, and the event timeline."""
    with workspace(store) as ws:
        view = ws.profiles.show(key, limit=limit, offset=offset)
    if as_json:
        print_json(view)
        return
    console.print(f"profile [bold]{view['profile_id']}[/bold]")
    print_table("identifiers", ["type", "value", "first seen", "last seen"], [tuple(i.values()) for i in view["identifiers"]])
    print_table(
        "traits",
        ["trait", "value", "from source", "message", "as of"],
        [(k, orjson.dumps(t["value"]).decode(), t["source_id"], t["message_id"], t["updated_at"]) for k, t in view["traits"].items()],
    )
    print_table("computed traits", ["trait", "value"], list(view["computed"].items()))
    timeline = view["timeline"]
    print_table(
        f"timeline ({timeline['offset'] + 1}-{timeline['offset'] + len(timeline['events'])} of {timeline['total']}, newest first)",
        ["time", "type", "event/name", "source"],
        [(e["timestamp"], e["type"], e["event"] or e["name"], e["source_id"]) for e in timeline["events"]],
    )


@app.command("export")
def export(
    key: Annotated[str, typer.Argument(help="A profile id or an identifier.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file (default: standard output).", dir_okay=False)] = None,
    store: StoreOption = None,
) -> None:
    """Everything held about one person, as JSON (a subject access request)."""
    with workspace(store) as ws:
        document = ws.profiles.export(key)
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    if output is None:
        sys.stdout.write(text.decode() + "\n")
        return
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(text)  # whole file or nothing: a half-written export is never left behind
    tmp.replace(output)
    console.print(f"wrote {output} ({len(document['events'])} events)", highlight=False)


@app.command("erase")
def erase(
    key: Annotated[str, typer.Argument(help="A profile id or an identifier.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase a person on request: events, identifiers, traits, derived rows. Keeps only
    salted hashes (tombstones) so their data is never stored again, and prints a receipt."""
    if not yes and not typer.confirm(f"Erase everything about {key}? This cannot be undone", default=False):
        raise typer.Exit(1)
    with workspace(store) as ws:
        receipt = ws.profiles.erase(key)
    if as_json:
        print_json(receipt.as_json())
        return
    kinds = ", ".join(f"{n} {t}" for t, n in sorted(receipt.identifiers.items()))
    console.print(
        f"erased profile {receipt.profile_id}: {receipt.events_removed:,} events, {receipt.failed_removed:,} failed "
        f"messages, identifiers ({kinds}); receipt {receipt.receipt_id}",
        highlight=False,
    )
