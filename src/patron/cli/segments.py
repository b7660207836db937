"""`patron segments ...` and `patron rfm`: groups of customers, who was in them when, RFM
groups and learned clusters."""

from __future__ import annotations

import csv
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json, print_table
from patron.segments.exceptions import SegmentError

app = typer.Typer(help="Segments: dynamic and static groups of customers, with their history.", no_args_is_help=True)

WhereOption = Annotated[
    str,
    typer.Option("--where", help="The query, e.g. \"country = 'US' AND performed('Order Completed', within 90d)\"."),
]
AsOfOption = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Evaluate as of this date or ISO time (UTC) instead of now (or PATRON_SEGMENTS_AS_OF).",
        show_default=False,
    ),
]  # fmt: skip


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def parse_instant(text: str | None, option: str) -> datetime | date | None:
    """``--at``/``--as-of``: a date or an ISO time (segments/dates.py), as naive UTC."""
    if text is None:
        return None
    from patron.segments.dates import parse_instant as parse

    try:
        return parse(text)
    except ValueError as error:
        raise SegmentError(f"{option}: {error}") from None


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name: letters, digits, '-', '_' or '.'.")],
    where: Annotated[str | None, typer.Option("--where", help="The query (see `patron segments preview`).")] = None,
    static: Annotated[bool, typer.Option("--static", help="Freeze the members matching now; never re-evaluated.")] = False,
    ids: Annotated[
        Path | None,
        typer.Option("--ids", help="A static segment from a CSV of profile ids, emails or user ids.", exists=True, dir_okay=False),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What the segment is for.")] = "",
    as_of: AsOfOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Save a segment: dynamic (re-evaluated on every refresh), static from a query
    (--static), or static from a file of ids (--ids)."""
    if (where is None) == (ids is None):
        raise SegmentError("give --where QUERY or --ids FILE.csv")
    with workspace(store) as ws, console.status("evaluating..."):
        shown = ws.segments.create(name, where, static=static or ids is not None, description=description, ids=ids,
                                   as_of=parse_instant(as_of, "--as-of"))  # fmt: skip
    if as_json:
        print_json(shown)
        return
    console.print(f"created {shown['kind']} segment [bold]{name}[/bold]: {shown['size']:,} profiles "
                  f"({shown['share']:.1%} of {shown['profiles']:,})", highlight=False)  # fmt: skip
    if shown.get("unmatched"):
        console.print(f"{shown['unmatched']:,} ids matched no profile, e.g. {', '.join(shown['unmatched_sample'][:5])}")
    _warn(shown["warnings"])


@app.command("update")
def update(
    name: Annotated[str, typer.Argument(help="The segment.")],
    where: Annotated[str | None, typer.Option("--where", help="A new query (evaluated at once).")] = None,
    description: Annotated[str | None, typer.Option("--description", help="A new description.")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a dynamic segment's query or a segment's description."""
    if where is None and description is None:
        raise SegmentError("give --where or --description")
    with workspace(store) as ws:
        shown = ws.segments.update(name, query=where, description=description)
    if as_json:
        print_json(shown)
        return
    console.print(f"updated [bold]{name}[/bold]: {shown['size']:,} profiles", highlight=False)
    _warn(shown["warnings"])


@app.command("preview")
def preview(
    where: WhereOption,
    sample: Annotated[int, typer.Option("--sample", min=0, max=1000, help="Profiles to show.")] = 10,
    as_of: AsOfOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """How many profiles a query matches, and a sample of them; nothing is saved."""
    with workspace(store) as ws, console.status("evaluating..."):
        result = ws.segments.preview(where, as_of=parse_instant(as_of, "--as-of"), sample=sample)
    if as_json:
        print_json(result.as_json())
        return
    console.print(f"{result.count:,} of {result.profiles:,} profiles ({result.share:.1%})", highlight=False)
    if result.sample:
        print_table("sample", ["profile", "email"], [(r["profile_id"], r["email"]) for r in result.sample])
    _warn(result.warnings)


@app.command("list")
def list_segments(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Every segment with its kind and size."""
    with workspace(store) as ws:
        segments = ws.segments.all()
    if as_json:
        print_json([s.as_json() for s in segments])
        return
    if not segments:
        console.print('no segments yet: `patron segments create NAME --where "..."`')
        return
    print_table(None, ["name", "kind", "size", "refreshed", "query or origin", "description"],
                [(s.name, s.kind, f"{s.size:,}", s.refreshed_at, s.query or s.origin, s.description) for s in segments])  # fmt: skip


@app.command("show")
def show(name: Annotated[str, typer.Argument(help="The segment.")], store: StoreOption = None, as_json: JsonOption = False) -> None:
    """A segment's definition, size, entries and exits so far, and warnings."""
    with workspace(store) as ws:
        shown = ws.segments.show(name)
    if as_json:
        print_json(shown)
        return
    rows = [(k, shown[k]) for k in ("name", "kind", "query", "description", "origin", "created_at", "updated_at",
                                    "refreshed_at", "time_dependent", "depends_on", "used_by")]  # fmt: skip
    rows += [("size", f"{shown['size']:,} of {shown['profiles']:,} ({shown['share']:.1%})"),
             ("entries / exits so far", f"{shown['entries']:,} / {shown['exits']:,}")]  # fmt: skip
    print_table(None, ["", ""], rows)
    _warn(shown["warnings"])


@app.command("members")
def members(
    name: Annotated[str, typer.Argument(help="The segment.")],
    at: Annotated[str | None, typer.Option("--at", help="Who was in it then: a date (its end, UTC) or an ISO time.")] = None,
    output_format: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.table,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most this many.")] = None,
    store: StoreOption = None,
) -> None:
    """The members (profile id, email, when they entered), now or at a past moment."""
    with workspace(store) as ws:
        rows = ws.segments.members(name, parse_instant(at, "--at"), limit=limit).to_pylist()
    if output_format is Format.json:
        print_json(rows)
    elif output_format is Format.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["profile_id", "email", "entered_at"])
        for row in rows:
            writer.writerow([row["profile_id"], row["email"] or "", row["entered_at"].isoformat() if row["entered_at"] else ""])
    else:
        print_table(f"{name}: {len(rows):,} members" + (f" at {at}" if at else ""), ["profile", "email", "entered"],
                    [(r["profile_id"], r["email"], r["entered_at"]) for r in rows])  # fmt: skip


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="The segment.")], store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Delete a segment (its history keeps the members' exits)."""
    with workspace(store) as ws:
        size = ws.segments.delete(name)
    if as_json:
        print_json({"deleted": name, "members": size})
    else:
        console.print(f"deleted {name} ({size:,} members exited)", highlight=False)


@app.command("refresh")
def refresh(
    names: Annotated[list[str] | None, typer.Argument(help="Segments to refresh (default: all).")] = None,
    full: Annotated[bool, typer.Option("--full", help="Evaluate over every profile (default: only profiles that changed).")] = False,
    as_of: AsOfOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build profiles, then bring dynamic segments up to date (incrementally, or --full)."""
    with workspace(store) as ws, console.status("refreshing segments..."):
        report = ws.segments.refresh(names or None, full=full, as_of=parse_instant(as_of, "--as-of"))
    if as_json:
        print_json(report.as_json())
        return
    console.print(f"{report.mode} refresh in {report.seconds} s" + (
        f" ({report.changed_profiles:,} profiles changed)" if report.changed_profiles is not None else ""), highlight=False)  # fmt: skip
    print_table(None, ["segment", "evaluated", "entered", "exited", "size"],
                [(n, s["mode"], f"{s['entered']:,}", f"{s['exited']:,}", f"{s['size']:,}") for n, s in report.segments.items()])  # fmt: skip


@app.command("overlap")
def overlap(
    a: Annotated[str, typer.Argument(help="A segment.")],
    b: Annotated[str, typer.Argument(help="Another segment.")],
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """How many profiles two segments share."""
    with workspace(store) as ws:
        result = ws.segments.overlap(a, b)
    if as_json:
        print_json(result)
        return
    print_table(None, ["", ""], [(f"in {a}", f"{result['size_a']:,}"), (f"in {b}", f"{result['size_b']:,}"),
                                 ("in both", f"{result['both']:,}"), ("Jaccard", f"{result['jaccard']:.3f}")])  # fmt: skip
    _warn(result["warnings"])


@app.command("attributes")
def attributes(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Every attribute a query can name, with its kind and where it comes from."""
    with workspace(store) as ws:
        found = ws.segments.catalogue().all()
    if as_json:
        print_json([a.as_json() for a in found])
        return
    print_table(None, ["attribute", "kind", "from", "description"], [(a.name, a.kind, a.source, a.description) for a in found])


@app.command("cluster")
def cluster(
    features: Annotated[str, typer.Option("--features", help="Numeric attributes, comma-separated (e.g. recency_days,frequency,monetary).")],
    k: Annotated[str, typer.Option("--k", help="Clusters: auto (2-8 by silhouette) or a number 2-8.")] = "auto",
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same clusters.")] = 0,
    prefix: Annotated[str, typer.Option("--prefix", help="Segment names: PREFIX-1, PREFIX-2, ...")] = "cluster",
    as_of: AsOfOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find a few key segments with k-means and save each as a static segment."""
    if k != "auto" and not (k.isdigit() and 2 <= int(k) <= 8):
        raise SegmentError(f"--k: {k!r} is neither auto nor a number from 2 to 8")
    names = [f.strip() for f in features.split(",") if f.strip()]
    with workspace(store) as ws, console.status("clustering..."):
        result = ws.segments.cluster(names, k=None if k == "auto" else int(k), seed=seed, prefix=prefix,
                                     as_of=parse_instant(as_of, "--as-of"))  # fmt: skip
    if as_json:
        print_json(result)
        return
    console.print(f"k = {result['k']} (silhouette by k: " + ", ".join(f"{n}: {s:.3f}" for n, s in result["curve"].items()) + ")",
                  highlight=False)  # fmt: skip
    print_table(None, ["segment", "name", "size"], [(s["segment"], s["name"], f"{s['size']:,}") for s in result["segments"]])
    _warn(result["warnings"])


def rfm(as_of: AsOfOption = None, store: StoreOption = None, as_json: JsonOption = False) -> None:
    """RFM groups: sizes, revenue share and the thresholds of each score."""
    with workspace(store) as ws, console.status("scoring..."):
        summary: dict[str, Any] = ws.segments.rfm(as_of=parse_instant(as_of, "--as-of"))
    if as_json:
        print_json(summary)
        return
    _print_rfm(summary)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _share(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _print_rfm(summary: dict[str, Any]) -> None:
    groups = summary["groups"]
    rows = [(g["group"], f"{g['customers']:,}", _share(g["customer_share"]), f"{g['revenue']:,.2f}", _share(g["revenue_share"]))
            for g in groups]  # fmt: skip
    print_table(f"RFM groups as of {summary['as_of']}: {summary['purchasers']:,} purchasers, {summary['prospects']:,} prospects",
                ["group", "customers", "share", "revenue", "revenue share"], rows)  # fmt: skip
    thresholds = summary["thresholds"]
    bands: list[tuple[str, ...]] = []
    for score in range(5, 0, -1):
        cells = []
        for measure in ("r", "f", "m"):
            band = next((b for b in thresholds[measure] if b["score"] == score), None)
            cells.append("" if band is None or band["min"] is None else f"{_number(band['min'])} - {_number(band['max'])}")
        bands.append((str(score), *cells))
    print_table("thresholds (values that get each score)", ["score", "recency (days)", "frequency (orders)", "monetary"], bands)
