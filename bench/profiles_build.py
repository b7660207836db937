"""Identity resolution and the profile build on generated customers (issue 3's figures).

    .venv/bin/python -m bench.profiles_build --customers 50000
    .venv/bin/python -m bench.profiles_build --customers 1000000 --base /tmp/base-1m.duckdb

Generates about 22 messages per customer with ``patron.demo.synthetic.synthetic_events``
and stores them (not timed; with ``--base`` the loaded store is kept there and reused
by later runs, each of which works on a copy). Then times, in order:

1. the extraction of every message's facts (facts.py; once per event, kept after),
2. a full identity resolve and a full profile build (traits, computed traits, consent),
3. 10,000 new events (``--new-events``): orders and page views of existing customers, a
   few new customers and some anonymous visitors who then identify, stored, then the
   incremental resolve and build (facts of the new events included),
4. as many late events (times inside the stored history), whose profiles cannot be
   merged and are computed again from all their events.

Prints the figures and the peak memory of this process.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

from patron.collect.spec import rows_to_table
from patron.collect.timestamps import utc_now
from patron.config import Settings
from patron.demo.synthetic import synthetic_events
from patron.workspace import Workspace

SEED = 11


def load(ws: Workspace, messages: Any, chunk: int = 50_000) -> int:
    loaded = 0
    while batch := list(islice(messages, chunk)):
        prepared = ws.collector.batch({"batch": batch}, source_id="bench", received_at=utc_now())
        ws.store.append(rows_to_table(prepared.rows))
        loaded += len(prepared.rows)
    return loaded


def new_events(customers: int, count: int, *, month: str = "2025-01", seed: int = 5) -> list[dict[str, Any]]:
    """``count`` messages arriving after the build: 80% from existing customers, 10% from
    new ones, 10% from anonymous visitors, half of whom identify as existing customers.
    Their times fall in ``month``: after the stored history (2024) by default, inside it
    for late events."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = []
    fresh = synthetic_events(max(count // 200, 1), seed=SEED + 1)
    while len(messages) < count:
        roll = rng.random()
        at = f"{month}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        if roll < 0.8:
            user = f"synthetic-{SEED}-{rng.randrange(customers)}"
            if rng.random() < 0.3:
                messages.append({"type": "track", "userId": user, "event": "Order Completed", "timestamp": at,
                                 "properties": {"revenue": rng.randint(5, 200), "category": "Pop"}})  # fmt: skip
            else:
                messages.append({"type": "page", "userId": user, "name": "Home", "timestamp": at})
        elif roll < 0.9:
            messages.append(next(fresh))
        else:
            anon = f"visitor-{rng.randrange(count)}"
            messages.append({"type": "page", "anonymousId": anon, "name": "Home", "timestamp": at})
            if rng.random() < 0.5:
                user = f"synthetic-{SEED}-{rng.randrange(customers)}"
                messages.append({"type": "identify", "anonymousId": anon, "userId": user, "timestamp": at})
    return messages[:count]


def timed(action: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = action()
    return result, round(time.perf_counter() - began, 2)


def run(customers: int, base: Path | None, added: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.duckdb"
        load_s: float | None = None
        if base is not None and base.exists():
            shutil.copy(base, path)
        else:
            with Workspace(Settings(store=path)) as ws:
                _, load_s = timed(lambda: load(ws, synthetic_events(customers, seed=SEED)))
                ws.store.checkpoint()
            if base is not None:
                shutil.copy(path, base)
        with Workspace(Settings(store=path)) as ws:
            events = int(ws.store.execute(ws.store.events().count()))
            _, facts_s = timed(lambda: ws.facts.refresh(full=True))
            resolved, resolve_s = timed(lambda: ws.identity.resolve(full=True))
            built, build_s = timed(lambda: ws.profiles.build(resolve=False, full=True))
            batch = new_events(customers, added)
            _, store_s = timed(lambda: load(ws, iter(batch)))
            incremental, incremental_s = timed(lambda: ws.profiles.build())
            mode = (incremental.mode, ws.store.get_meta("identity_seq"))
            # Late events (times inside the history): those profiles are computed again.
            load(ws, iter(new_events(customers, added, month="2024-06", seed=6)))
            late, late_s = timed(lambda: ws.profiles.build())
    return {
        "customers": customers,
        "events": events,
        "load_s (not a target)": load_s,
        "facts_extraction_s (once per event)": facts_s,
        "identity_resolve_full_s": resolve_s,
        "profiles_build_full_s": build_s,
        "rebuild_total_s (resolve + build)": round(resolve_s + build_s, 2),
        "profiles": built.profiles,
        "identifiers": resolved.identifiers,
        "new_events": added,
        "new_events_store_s (not a target)": store_s,
        "incremental_resolve_and_build_s": incremental_s,
        "incremental_profiles_computed": incremental.rebuilt,
        "incremental_profiles_merged": incremental.merged,
        "incremental_mode": mode[0],
        "late_events_resolve_and_build_s (not a target)": late_s,
        "late_profiles_merged": late.merged,
        "late_profiles_recomputed": late.recomputed,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--base", type=Path, help="keep the loaded store here and reuse it in later runs")
    parser.add_argument("--new-events", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(run(args.customers, args.base, args.new_events), indent=2))


if __name__ == "__main__":
    main()
