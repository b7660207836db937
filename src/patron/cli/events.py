"""`patron events ...`: inspect the event log and the failed messages."""

from __future__ import annotations

from typing import Annotated

import typer

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json, print_jsonl, print_table

app = typer.Typer(help="Inspect collected events and rejected messages.", no_args_is_help=True)


@app.command("count")
def count(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """How many events are stored, by type and by source."""
    with workspace(store) as ws:
        counts = ws.events.counts()
    if as_json:
        print_json(counts.as_json())
        return
    console.print(f"[bold]{counts.total:,}[/bold] events, {counts.failed:,} failed messages")
    if counts.first_timestamp:
        console.print(f"from {counts.first_timestamp} to {counts.last_timestamp}")
    print_table("by type", ["type", "events"], [(t, f"{n:,}") for t, n in counts.by_type.items()])
    print_table("by source", ["source", "events"], [(s, f"{n:,}") for s, n in counts.by_source.items()])


@app.command("tail")
def tail(
    n: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many events.")] = 10,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The most recently stored events, oldest first."""
    with workspace(store) as ws:
        rows = ws.events.tail(n)
    if as_json:
        print_jsonl(rows)
        return
    print_table(
        None,
        ["seq", "source", "type", "event/name", "user", "anonymous", "timestamp"],
        [
            (r["seq"], r["source_id"], r["type"], r["event"] or r["name"], r["user_id"], r["anonymous_id"], r["timestamp"])
            for r in rows
        ],
    )


@app.command("failed")
def failed(
    all_: Annotated[bool, typer.Option("--all", help="Include messages already replayed.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Messages that were rejected, with the field and reason."""
    with workspace(store) as ws:
        rows = ws.events.failed(include_replayed=all_, limit=limit)
    if as_json:
        print_jsonl(rows)
        return
    if not rows:
        console.print("no failed messages")
        return
    print_table(
        "failed messages",
        ["id", "source", "received", "index", "field", "reason", "status"],
        [(r["failed_id"], r["source_id"], r["received_at"], r["message_index"], r["field"], r["reason"], r["status"]) for r in rows],
    )


@app.command("replay-failed")
def replay_failed(
    ids: Annotated[list[int] | None, typer.Option("--id", help="Only this failed id (repeatable).")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Validate failed messages again (after a fix) and store the ones that now pass."""
    with workspace(store) as ws:
        report = ws.events.replay_failed(ids or None)
    if as_json:
        print_json({"replayed": report.replayed, "duplicates": report.duplicates, "still_failing": report.still_failing})
    else:
        console.print(
            f"replayed {report.replayed}, already stored {report.duplicates}, still failing {report.still_failing}"
        )
