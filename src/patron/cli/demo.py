"""`patron demo`: load the bundled demo data (real CDNOW purchases plus labelled synthetic data)."""

from __future__ import annotations

from patron.cli.imports import ProgressBar
from patron.cli.options import JsonOption, StoreOption, workspace
from patron.cli.output import console, print_json, print_table
from patron.collect.exceptions import KeyNameError
from patron.demo import DemoSummary

DEMO_READ_KEY = "demo-read"


def demo(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Load the bundled demo data (CDNOW purchases plus labelled synthetic data) once."""
    profiles = read_key = None
    with workspace(store) as ws, ProgressBar() as bar:
        summary = ws.demo.load(bar)
        path = ws.settings.store
        if not summary.already_loaded:
            # So the API and `patron profiles show` have something to show right away.
            with console.status("building profiles..."):
                profiles = ws.profiles.build().profiles
            try:
                read_key = ws.keys.create(DEMO_READ_KEY, "read").key
            except KeyNameError:
                read_key = None  # made by hand earlier
    if as_json:
        print_json({**summary.as_json(), "profiles": profiles, "read_key": read_key})
        return
    _print(summary, str(path))
    if profiles is not None:
        console.print(
            f"Built {profiles:,} customer profiles: try `patron profiles show user_id:cdnow-3`"
            + (
                f', or GET http://127.0.0.1:8000/v1/profiles?user_id=cdnow-3 with the read key "{DEMO_READ_KEY}" '
                f"(shown only now): [bold]{read_key}[/bold]"
                if read_key
                else ""
            ),
            highlight=False,
        )


def _print(summary: DemoSummary, path: str) -> None:
    real = summary.real
    if summary.already_loaded:
        console.print(f"The demo data is already loaded in {path} (since {summary.loaded_at}):", highlight=False)
    else:
        console.print(f"Loaded the demo data into {path} in {summary.seconds:g} s:", highlight=False)
    console.print(
        f"  real       CDNOW purchase log: {real['orders']:,} orders from "
        f"{real['customers']:,} customers, {real['first']} to {real['last']} (source {real['source']})",
        highlight=False,
    )
    console.print(
        f"  synthetic  generated from seed {summary.seed}, labelled context.synthetic = true "
        "(source demo:synthetic)",
        highlight=False,
    )
    rows = [("real", "Order Completed", f"{real['orders']:,}")]
    rows += [("synthetic", label, f"{count:,}") for label, count in summary.synthetic.items()]
    print_table(None, ["data", "type or event", "messages"], rows)
    if summary.rejected:
        console.print(f"{summary.rejected:,} messages were rejected: `patron events failed` lists them")
    if summary.write_key:
        console.print(
            f'Write key "demo" (shown only now, store it): [bold]{summary.write_key}[/bold]', highlight=False
        )
    else:
        console.print(
            'The "demo" write key was shown when the data was loaded; make another with '
            "`patron keys create --name my-app --scope write`."
        )
    console.print(
        "Next: `patron serve`, then http://127.0.0.1:8000 (API docs at http://127.0.0.1:8000/docs); "
        "`patron events count` shows what is stored.",
        highlight=False,
    )
