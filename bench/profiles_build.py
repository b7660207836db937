"""Identity resolution and the profile build on generated customers (issue 3's figures).

    .venv/bin/python -m bench.profiles_build --customers 50000

Generates about 22 messages per customer with ``patron.demo.synthetic.synthetic_events``,
stores them (not timed), then times, on a fresh store: the full identity resolve, the
profile build (traits, computed traits, consent) and a second build without resolving.
Prints the figures with the peak memory of this process.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from itertools import islice
from pathlib import Path

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.demo.synthetic import synthetic_events
from patron.workspace import Workspace


def run(customers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        ws = Workspace(Settings(store=Path(folder) / "bench.duckdb"))
        messages = synthetic_events(customers, seed=11)
        loaded = 0
        began = time.perf_counter()
        while chunk := list(islice(messages, 50_000)):
            prepared = ws.collector.batch({"batch": chunk}, source_id="bench", received_at=utc_now())
            ws.store.append(rows_to_table(prepared.rows))
            loaded += len(prepared.rows)
        load_s = time.perf_counter() - began
        began = time.perf_counter()
        resolved = ws.identity.resolve()
        resolve_s = time.perf_counter() - began
        began = time.perf_counter()
        built = ws.profiles.build(resolve=False)
        build_s = time.perf_counter() - began
        ws.close()
    return {
        "customers": customers,
        "events": loaded,
        "load_s (not a target)": round(load_s, 1),
        "identity_resolve_s": round(resolve_s, 2),
        "profiles_build_s": round(build_s, 2),
        "profiles": built.profiles,
        "identifiers": resolved.identifiers,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    print(json.dumps(run(parser.parse_args().customers), indent=2))


if __name__ == "__main__":
    main()
