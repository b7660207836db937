"""`patron quality report`: how much of the customer data is usable."""

from __future__ import annotations

from typing import Annotated

import typer

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json, print_table

app = typer.Typer(help="Data-quality reports.", no_args_is_help=True)


@app.command("report")
def report(
    stale_days: Annotated[int, typer.Option("--stale-days", min=1, help="Days without events that make a profile stale.")] = 365,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Shares of profiles with missing or invalid contact data, bad dates, impossible ages,
    stale activity, and the overall share of unusable records, with examples."""
    with workspace(store) as ws:
        result = ws.profiles.quality(ws.identifier_rules, stale_days=stale_days)
    if as_json:
        print_json(result)
        return
    total = result["profiles"]
    unusable = result["unusable"]
    console.print(f"[bold]{unusable['share']:.1%}[/bold] of {total:,} profiles are unusable ({unusable['profiles']:,})")
    print_table(
        "problems",
        ["problem", "profiles", "share", "examples"],
        [
            (name.replace("_", " "), f"{p['profiles']:,}", f"{p['share']:.1%}", "; ".join(
                f"{e['profile_id']}" + (f" ({e['value']})" if e["value"] is not None else "") for e in p["examples"][:3]
            ))
            for name, p in result["problems"].items()
        ],
    )
    rejected = result["rejected_messages"]
    console.print(f"{rejected['messages']:,} messages rejected at collection ({rejected['share_of_received']:.2%} of received)")
    for reason in rejected["top_reasons"]:
        console.print(f"  {reason['messages']:,} × {reason['reason']}", highlight=False)
