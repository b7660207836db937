"""`patron identity ...`: build the identity graph, list its clusters, explain a profile."""

from __future__ import annotations

import csv
import sys
from typing import Annotated

import typer

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json, print_table

app = typer.Typer(help="Resolve identities into profiles, and explain every merge.", no_args_is_help=True)


@app.command("resolve")
def resolve(
    full: Annotated[bool, typer.Option("--full", help="Rebuild from the whole event log (the only mode so far).")] = True,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build the identity graph from the event log under the merge rules in settings."""
    with workspace(store) as ws, console.status("resolving identities..."):
        report = ws.identity.resolve()
    if as_json:
        print_json(report.as_json())
        return
    console.print(
        f"{report.events:,} events: {report.identifiers:,} identifiers in {report.profiles:,} profiles; "
        f"{report.edges_linked:,} links made, {report.edges_refused:,} refused by the merge rules, "
        f"{report.values_refused:,} unusable values; {report.seconds} s",
        highlight=False,
    )


@app.command("clusters")
def clusters(
    format_: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    store: StoreOption = None,
) -> None:
    """Every identifier with its profile: identifier_type, identifier_value, profile_id."""
    if format_ not in ("csv", "json"):
        raise typer.BadParameter("must be csv or json", param_hint="--format")
    with workspace(store) as ws:
        rows = ws.identity.clusters()
    if format_ == "json":
        print_json(rows)
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=["identifier_type", "identifier_value", "profile_id"])
    writer.writeheader()
    writer.writerows(rows)


@app.command("explain")
def explain(
    profile: Annotated[str, typer.Argument(help="A profile id, an old profile id, or an identifier (email:ann@shop.com).")],
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every identifier of a profile and the chain of links (messages, times) that joined it."""
    with workspace(store) as ws:
        explanation = ws.identity.explain(profile)
    if as_json:
        print_json(explanation.as_json())
        return
    console.print(f"profile [bold]{explanation.profile_id}[/bold]")
    print_table(
        "identifiers",
        ["type", "value", "first seen", "last seen", "messages"],
        [(i["identifier_type"], i["identifier_value"], i["first_seen"], i["last_seen"], i["messages"]) for i in explanation.identifiers],
    )
    print_table(
        "links that joined them (oldest first)",
        ["edge", "from", "to", "by", "source", "message", "time"],
        [
            (e["edge_id"], f"{e['a_type']}:{e['a_value']}", f"{e['b_type']}:{e['b_value']}", e["kind"], e["source_id"], e["message_id"], e["timestamp"])
            for e in explanation.links
        ],
    )
    if explanation.refused:
        print_table(
            "links refused by the merge rules",
            ["edge", "from", "to", "message", "why"],
            [(e["edge_id"], f"{e['a_type']}:{e['a_value']}", f"{e['b_type']}:{e['b_value']}", e["message_id"], e["reason"]) for e in explanation.refused],
        )
