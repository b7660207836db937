"""`make bench` / `python -m bench`: run the benchmarks and print their figures.

    python -m bench                 # all six, full length (60 s load runs, 1,000,000 rows,
                                    # 1,000,000 customers and about 22,000,000 events, the
                                    # 20,000,000-event build on DuckDB and Spark local[1], local[2],
                                    # and 20 segments on 1.1 M profiles and 24 M events)
    python -m bench --quick         # 10 s load runs, 200,000 rows, 50,000 customers, 4.8 M events
    python -m bench --only ingest   # one of: ingest, track, orders, profiles, spark, segments (repeatable)

The profiles benchmark keeps its loaded store in bench/results/ (``--base``), so only
the first full run pays the 15 minutes or so of loading.

Figures also go to bench/results/<date>.json (git-ignored); docs/benchmarks.md records
the ones published.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import RESULTS, machine

NAMES = ("ingest", "track", "orders", "profiles", "spark", "segments")


def cpu_idle_share(seconds: float = 1.0) -> float:
    """Share of CPU time idle over ``seconds``: other load on the machine skews the figures."""

    def read() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return fields[3] + fields[4], sum(fields)

    idle0, total0 = read()
    time.sleep(seconds)
    idle1, total1 = read()
    return (idle1 - idle0) / max(1, total1 - total0)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s load runs and 200,000 import rows")
    parser.add_argument("--only", action="append", choices=NAMES, help="run only this benchmark")
    parser.add_argument("--duration", type=float, help="seconds per load run (default 60, --quick 10)")
    parser.add_argument("--clients", type=int, default=10, help="client processes for ingest (default 10)")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s for track (default 1000)")
    parser.add_argument("--rows", type=int, help="CSV rows for orders (default 1,000,000, --quick 200,000)")
    parser.add_argument("--profile", action="store_true", help="sample the server with py-spy (ingest, track)")
    parser.add_argument("--customers", type=int, help="customers for profiles (default 1,000,000, --quick 50,000)")
    args = parser.parse_args()

    duration = args.duration or (10.0 if args.quick else 60.0)
    rows = args.rows or (200_000 if args.quick else 1_000_000)
    chosen = args.only or list(NAMES)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick}
    print(json.dumps(results["machine"], indent=2))
    for name in chosen:
        idle = cpu_idle_share()
        if idle < 0.85:
            print(f"warning: the CPU was only {idle:.0%} idle before {name}: other load skews the figures")
        print(f"\n== {name} ...", flush=True)
        if name == "ingest":
            from bench import ingest

            result = ingest.run(duration=duration, clients=args.clients, profile=args.profile)
        elif name == "track":
            from bench import track

            result = track.run(duration=duration, rate=args.rate, profile=args.profile)
        elif name == "orders":
            from bench import import_orders

            result = import_orders.run(rows=rows)
        elif name == "spark":
            from bench import spark_build

            events = 1_000_000 if args.quick else 20_000_000
            result = spark_build.run(events, [1, 2], "12g")
        elif name == "segments":
            from bench import segments_eval

            # --quick: one copy of the collected store (4.8 M events, 221,238 profiles)
            scale = (4_800_000, 0) if args.quick else (20_000_000, 1_000_000)
            result = segments_eval.run(*scale)
        else:
            from bench import profiles_build

            customers = args.customers or (50_000 if args.quick else 1_000_000)
            result = profiles_build.run(customers, RESULTS / f"profiles-base-{customers}.duckdb", 10_000)
        result["cpu_idle_before"] = round(idle, 2)
        results[name] = result
        print(json.dumps(result, indent=2, default=str), flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {out}")
    _summary(results)


def _summary(results: dict[str, Any]) -> None:
    print("\nsummary")
    if "ingest" in results:
        r = results["ingest"]
        ok = "PASS" if r["events_per_s"] >= 20_000 and r["durable"] else "FAIL"
        print(
            f"  ingest  {ok}: {r['events_per_s']:,} events/s ({r['requests_per_s']} req/s) over "
            f"{r['duration_s']} s, p50 {r['latency_ms']['p50']} ms, p99 {r['latency_ms']['p99']} ms, "
            f"stored {r['events_stored']:,} of {r['events_acknowledged']:,} acknowledged, "
            f"server peak RSS {r['server_peak_rss_mib']} MiB (target 20,000 events/s)"
        )
    if "track" in results:
        r = results["track"]
        ok = "PASS" if r["latency_ms"]["p99"] < 50 and r["durable"] else "FAIL"
        print(
            f"  track   {ok}: {r['achieved_rate']} req/s, p50 {r['latency_ms']['p50']} ms, "
            f"p99 {r['latency_ms']['p99']} ms, max {r['latency_ms']['max']} ms, "
            f"server peak RSS {r['server_peak_rss_mib']} MiB (target p99 < 50 ms at 1,000 req/s)"
        )
    if "orders" in results:
        r = results["orders"]
        if "error" in r:
            print(f"  orders  FAIL: {r['error'][:300]}")
        else:
            ok = "PASS" if r["import_s"] < 30 else "FAIL"
            print(
                f"  orders  {ok}: {r['benchmark']} in {r['import_s']} s, {r['events_stored']:,} events, "
                f"peak RSS {r['peak_rss_mib']} MiB (target < 30 s for 1,000,000 rows)"
            )
    if "profiles" in results:
        r = results["profiles"]
        total = r["rebuild_total_s (resolve + build)"]
        ok = "PASS" if total < 60 and r["incremental_resolve_and_build_s"] < 2 else "FAIL"
        print(
            f"  profiles {ok}: {r['profiles']:,} profiles from {r['events']:,} events: full rebuild {total} s "
            f"(resolve {r['identity_resolve_full_s']} s + build {r['profiles_build_full_s']} s; the facts "
            f"extraction, once per event, {r['facts_extraction_s (once per event)']} s), "
            f"{r['new_events']:,} new events in {r['incremental_resolve_and_build_s']} s; peak RSS "
            f"{r['peak_rss_mib']} MiB (targets: full rebuild < 60 s, incremental < 2 s)"
        )
    if "segments" in results:
        r = results["segments"]["summary"]
        ok = "PASS" if r["full_target_met (< 20 s)"] and r["incremental_build_and_refresh_target_met (< 2 s)"] else "FAIL"
        print(
            f"  segments {ok}: 20 segments from scratch {r['full_refresh_20_segments_s']} s; after 10,000 new "
            f"events: build {r['incremental_build_s']} s + refresh {r['incremental_refresh_s']} s, equal to a "
            f"full evaluation: {r['incremental_equals_full']}; pandas {r['pandas_total_s']} s "
            f"({r['pandas_total_over_patron_full']}x; compute only {r['pandas_compute_over_patron_full']}x) "
            "(targets: < 20 s from scratch, < 2 s incremental)"
        )


if __name__ == "__main__":
    main()
