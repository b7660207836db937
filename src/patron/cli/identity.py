"""`patron identity ...`: build the identity graph, list its clusters, explain a profile."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated

import typer

from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json, print_table
from patron.identity.graph import MergeRules

app = typer.Typer(help="Resolve identities into profiles, and explain every merge.", no_args_is_help=True)


@app.command("resolve")
def resolve(
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild from the whole event log (default: only events since the last resolve).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Preview other merge rules; write nothing.")] = False,
    limits: Annotated[
        str | None, typer.Option("--limits", help='With --dry-run: limits to try, as JSON, e.g. \'{"user_id": 1, "email": 2}\'.')
    ] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring the identity graph up to date with the event log, under the merge rules in
    settings: incremental (new events and the clusters they touch), or whole with --full."""
    if limits is not None and not dry_run:
        raise typer.BadParameter("goes with --dry-run (set PATRON_IDENTITY_LIMITS to apply limits)", param_hint="--limits")
    with workspace(store) as ws:
        if dry_run:
            rules = ws.identity.merge_rules
            if limits is not None:
                rules = MergeRules(limits=_parse_limits(limits), priority=rules.priority)
            preview = ws.identity.preview(rules)
            if as_json:
                print_json(preview.as_json())
            else:
                console.print(
                    f"with limits {rules.limits}: {preview.profiles_now:,} profiles would become "
                    f"{preview.profiles_after:,}; {preview.profiles_merged:,} would merge into another, "
                    f"{preview.profiles_split:,} would split; {preview.edges_refused_after:,} links refused. "
                    "Nothing was written.",
                    highlight=False,
                )
            return
        with console.status("resolving identities..."):
            report = ws.identity.resolve(full=full)
    if as_json:
        print_json(report.as_json())
        return
    console.print(
        f"{report.mode} resolve of {report.events:,} events: {report.identifiers:,} identifiers in {report.profiles:,} profiles; "
        f"{report.edges_linked:,} links made, {report.edges_refused:,} refused by the merge rules, "
        f"{report.values_refused:,} unusable values; {report.seconds} s",
        highlight=False,
    )


def _parse_limits(text: str) -> dict[str, int]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="--limits") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, int) and v >= 1 for k, v in value.items()):
        raise typer.BadParameter('must be an object of identifier type to a whole number >= 1, e.g. {"email": 2}', param_hint="--limits")
    return value


@app.command("split")
def split(
    profile: Annotated[str, typer.Argument(help="The profile (id or identifier).")],
    edge: Annotated[str | None, typer.Option("--edge", help="Remove this link (ids in `patron identity explain`).")] = None,
    identifier: Annotated[str | None, typer.Option("--identifier", help="Detach this identifier (type:value) from the profile.")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why, kept with the removal.")] = "",
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Undo a merge: remove a link or detach an identifier, remembered for every later rebuild."""
    with workspace(store) as ws:
        report = ws.identity.split(profile, edge_id=edge, identifier=identifier, reason=reason)
    if as_json:
        print_json(report.as_json())
        return
    console.print(f"removed {report.pairs_removed} link(s) ({report.removal_id}); the identifiers are now in:", highlight=False)
    for profile_id, identifiers in report.profiles.items():
        console.print(f"  {profile_id}: {', '.join(identifiers)}", highlight=False)


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


@app.command("match")
def match(
    on: Annotated[str | None, typer.Option("--on", help="Custom traits to compare too, comma-separated (e.g. ssn,loyalty_card).")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The probabilistic pass (Splink): link profiles that share no identifier but are one
    person by name, birthday, address, email, phone; list near-misses for review."""
    from patron.identity.matching import MatchSettings

    with workspace(store) as ws:
        custom = [*ws.settings.identity_match_on, *(t.strip() for t in (on or "").split(",") if t.strip())]
        settings = MatchSettings(
            match_threshold=ws.settings.identity_match_threshold, review_threshold=ws.settings.identity_review_threshold
        )
        with console.status("matching profiles..."):
            report = ws.profiles.match(custom, settings)
    if as_json:
        print_json(report.as_json())
        return
    console.print(
        f"compared {report.records:,} profiles on {', '.join(report.traits_compared)}: {report.matched_pairs:,} pairs "
        f"matched, {report.review_pairs:,} for review ({report.new_links:,} new); profiles {report.profiles_before:,} -> "
        f"{report.profiles_after:,}; {report.seconds} s. `patron identity review` lists the pairs to decide.",
        highlight=False,
    )


@app.command("review")
def review(
    accept: Annotated[list[str] | None, typer.Option("--accept", help="Accept this pair (repeatable).")] = None,
    reject: Annotated[list[str] | None, typer.Option("--reject", help="Reject this pair (repeatable).")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """List probable links waiting for a person, or accept / reject them (then rebuild)."""
    with workspace(store) as ws:
        if accept or reject:
            decided = ws.identity.decide(accept or [], accept=True) if accept else 0
            decided += ws.identity.decide(reject or [], accept=False) if reject else 0
            ws.profiles.build(resolve=True)
            console.print(f"decided {decided} pair(s); profiles rebuilt", highlight=False)
            return
        pending = ws.identity.probable_links("review")
    if as_json:
        print_json(pending)
        return
    if not pending:
        console.print("nothing to review")
        return
    print_table(
        "probable links to review (most likely first)",
        ["pair", "between", "and", "probability", "weight", "why (weights)"],
        [
            (p["pair_id"], f"{p['a_type']}:{p['a_value']}", f"{p['b_type']}:{p['b_value']}", f"{p['match_probability']:.3f}", f"{p['match_weight']:.1f}", p["weights"])
            for p in pending
        ],
    )
