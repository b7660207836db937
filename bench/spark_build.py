"""The full profile build on DuckDB and on Spark, side by side (issue 4's figures).

    .venv/bin/python -m bench.spark_build --events 5000000
    .venv/bin/python -m bench.spark_build --events 20000000 --cores 2 --cores 4
    .venv/bin/python -m bench.spark_build --events 80000000

Generates about 22 messages per customer (``patron.demo.synthetic``) through the
collector until the store holds ``--events`` events, up to 5 M, and keeps that store in
bench/results/ so later runs reuse it (loading is not timed). Bigger stores are copies
of the 5 M one, each a new population (ids and emails renamed): see :func:`replicate`.
Then, on a copy of the store (or, for copies, on the store itself, removed after):

1. DuckDB: the full build (facts extraction, identity resolve, profiles), timed;
2. the export of the event log to a lake (``patron export events``), timed; for copies,
   the lake is made by appends instead, one feeder per copy (their time is reported);
3. Spark in local mode on each ``--cores`` count: the same full build on the lake,
   timed, after the session has started (its start is reported apart);
4. a check that both engines made the same number of profiles, identifiers and traits.

Each Spark run is a separate process (a JVM's cores are fixed when it starts). The
processes' peak memory is reported: Python's and, for Spark, the JVM's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, vm_hwm_kib
from bench.profiles_build import SEED, load
from patron.config import Settings
from patron.demo.synthetic import synthetic_events
from patron.workspace import Workspace

EVENTS_PER_CUSTOMER = 22.6  # what synthetic_events makes on average (bench/profiles_build)
#: The largest store loaded through the collector; bigger ones are copies of it.
COLLECTED_EVENTS = 5_000_000


def base_store(events: int) -> Path:
    """A store with about ``events`` events, loaded once and kept: through the collector
    up to :data:`COLLECTED_EVENTS`; above, as copies of that store (:func:`replicate`)."""
    if events > COLLECTED_EVENTS:
        return replicate(events)
    path = RESULTS / f"spark-base-{events}.duckdb"
    if not path.exists():
        RESULTS.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        with Workspace(Settings(store=partial)) as ws:
            load(ws, synthetic_events(int(events / EVENTS_PER_CUSTOMER), seed=SEED))
            ws.store.checkpoint()
        partial.rename(path)
    return path


def replicate(events: int) -> Path:
    """A store of ``k`` copies of the collected one, ``k`` = ``events`` / its size
    (rounded): each copy is a new population, the same customers and messages with their
    ids and emails renamed, so the identity graph and the profiles grow ``k`` times.
    Loading 80 M events through the collector takes over an hour on two cores; copying
    takes minutes. Not timed, like any load. The store is built on in place (it is too
    big to copy here) and removed after the run (:func:`run`)."""
    _, size, _ = _collected()
    copies = max(1, round(events / size))
    path = RESULTS / f"spark-base-{copies}x{COLLECTED_EVENTS}.duckdb"
    if not path.exists():
        _write_copies(path, range(copies))
    return path


def replicated_lake(events: int, lake: Path) -> float:
    """The lake of the same copies as :func:`replicate`, each appended by its own store
    (``patron export events --append``, a feeder per copy, as collection nodes feed a
    lake), without the whole store on disk at once. Returns the seconds the appends took."""
    _, size, _ = _collected()
    seconds = 0.0
    for copy in range(max(1, round(events / size))):
        path = lake.parent / f"copy-{copy}.duckdb"
        _write_copies(path, [copy])
        with Workspace(Settings(store=path)) as ws:
            seconds += ws.events.export(lake, append=True, feeder=f"copy-{copy}").seconds
        path.unlink()
    return round(seconds, 1)


def _collected() -> tuple[Path, int, int]:
    """The collected store, its events and its last ``seq``."""
    import duckdb  # bench code: the load shortcut reads and writes event tables directly

    base = base_store(COLLECTED_EVENTS)
    with duckdb.connect(str(base), read_only=True) as con:
        size, top = con.execute("SELECT count(*), max(seq) FROM events").fetchone() or (0, 0)
    return base, int(size), int(top)


def _write_copies(path: Path, copies: range | list[int]) -> None:
    """A new store at ``path`` holding the given copies of the collected store's events."""
    import duckdb

    base, _, top = _collected()
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    with Workspace(Settings(store=partial)) as ws:
        ws.store.checkpoint()  # the store's tables, empty
    tag = f"synthetic-{SEED}-"
    columns = "source_id, type, event, name, anonymous_id, group_id, previous_id, timestamp, original_timestamp, sent_at, received_at"
    with duckdb.connect(str(partial)) as con:
        con.execute(f"ATTACH '{base}' AS base (READ_ONLY)")
        for copy in copies:
            renamed = f"synthetic-{SEED}r{copy}-"
            con.execute(
                f"INSERT INTO events (seq, message_id, user_id, raw, {columns}) "
                f"SELECT seq + {copy * top}, replace(message_id, '{tag}', '{renamed}'), "
                f"replace(user_id, '{tag}', '{renamed}'), "
                f"replace(replace(raw, '{tag}', '{renamed}'), '@example.com', '.r{copy}@example.com'), {columns} "
                "FROM base.events"
            )
            print(f"copy {copy} written to {path.name}", file=sys.stderr, flush=True)
        con.execute("CHECKPOINT")
    partial.rename(path)


def counts(ws: Workspace) -> dict[str, int]:
    store = ws.store
    return {
        name: int(store.execute(store.table(name).count()))
        for name in (
            "identity_identifiers",
            "identity_edges",
            "profile_computed",
            "profile_traits",
            "profile_consent_history",
        )
    }


def stages(ws: Workspace) -> tuple[dict[str, float], Any]:
    """The full build in its three stages, each timed: facts extraction, identity
    resolve, profiles (traits, computed traits, consent)."""
    times = {}
    began = time.perf_counter()
    ws.facts.refresh(full=True)
    times["facts_s"] = round(time.perf_counter() - began, 1)
    began = time.perf_counter()
    ws.identity.resolve(full=True)
    times["resolve_s"] = round(time.perf_counter() - began, 1)
    began = time.perf_counter()
    report = ws.profiles.build(resolve=False, full=True)
    times["profiles_s"] = round(time.perf_counter() - began, 1)
    times["build_s"] = round(sum(times.values()), 1)
    return times, report


def duckdb_build(path: Path, lake: Path | None) -> dict[str, Any]:
    """The DuckDB build on the store at ``path``, then its export to ``lake`` if given."""
    with Workspace(Settings(store=path)) as ws:
        events = int(ws.store.execute(ws.store.events().count()))
        times, report = stages(ws)
        exported = ws.events.export(lake).seconds if lake is not None else None
        return {
            "events": events,
            "duckdb_build_s": times["build_s"],
            "duckdb_stages": times,
            "profiles": report.profiles,
            "export_s": exported,
            "duckdb_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "counts": counts(ws),
        }


def spark_build(lake: Path, cores: int, driver_memory: str) -> dict[str, Any]:
    """Run in a child process: ``python -m bench.spark_build --child LAKE CORES MEMORY``."""
    conf = {"spark.driver.memory": driver_memory, "spark.sql.shuffle.partitions": str(4 * cores)}
    settings = Settings(store=lake, backend="spark", spark_master=f"local[{cores}]", spark_conf=conf)
    began = time.perf_counter()
    with Workspace(settings) as ws:
        ws.store.events()
        started = time.perf_counter() - began
        times, report = stages(ws)
        result = {"cores": cores, "session_start_s": round(started, 1), "spark_build_s": times["build_s"],
                  "spark_stages": times, "profiles": report.profiles, "counts": counts(ws)}  # fmt: skip
        # The JVM pyspark launched (its gateway process), and this interpreter: peak resident memory.
        launched = getattr(ws.store.session.sparkContext._gateway, "proc", None)  # type: ignore[attr-defined]
        result["jvm_peak_rss_mib"] = round((vm_hwm_kib(launched.pid) or 0) / 1024) if launched else None
        result["python_peak_rss_mib"] = round((vm_hwm_kib(os.getpid()) or 0) / 1024)
    return result


def run(events: int, cores: list[int], driver_memory: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=RESULTS) as folder:
        lake = Path(folder) / "lake"
        if events > COLLECTED_EVENTS:
            # Copies too big to keep beside their lake: built on in place, then removed
            # before the lake is made (by appends, one feeder per copy).
            path = replicate(events)
            try:
                result = duckdb_build(path, None)
            finally:
                path.unlink()
            result["lake_appends_s"] = replicated_lake(events, lake)
        else:
            path = Path(folder) / "bench.duckdb"
            shutil.copy(base_store(events), path)
            result = duckdb_build(path, lake)
        result["spark"] = []
        for n in cores:
            child = subprocess.run(
                [sys.executable, "-m", "bench.spark_build", "--child", str(lake), str(n), driver_memory],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            shutil.rmtree(lake / "_patron", ignore_errors=True)  # each run builds from nothing
            spark = json.loads(child.stdout.strip().splitlines()[-1])
            spark["same_counts_as_duckdb"] = spark.pop("counts") == result["counts"]
            spark["ratio_to_duckdb"] = round(spark["spark_build_s"] / result["duckdb_build_s"], 2)
            result["spark"].append(spark)
    return result


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(spark_build(Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, action="append", help="events in the store (repeatable)")
    parser.add_argument(
        "--cores", type=int, action="append", help="Spark local cores (repeatable; default 2)"
    )
    parser.add_argument(
        "--driver-memory", default="8g", help="spark.driver.memory (local mode: all of Spark)"
    )
    args = parser.parse_args()
    for events in args.events or [5_000_000]:
        print(json.dumps(run(events, args.cores or [2], args.driver_memory), indent=2), flush=True)


if __name__ == "__main__":
    main()
