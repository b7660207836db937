"""Customer records end to end: import, deterministic graph, probabilistic pass, profiles.

    .venv/bin/python -m bench.pipeline_customers --records 1000000

Generates people with about 10% duplicates and known truth (``bench.match_generated``),
writes them as a CRM export (CSV with Segment's trait names: ``firstName``, ``lastName``,
``email``, ``phone``, ``birthday``, ``address.street`` ... and an ``id`` column), then
runs the product path on a fresh store, each stage in its own process as the CLI does:

1. ``patron import customers FILE --id-column id``
2. ``patron identity resolve``
3. ``patron identity match``   (it builds the profiles before and after matching)
4. ``patron profiles build``

Prints seconds, CPU seconds and peak memory (RSS, the stage process's own) per stage
(CPU seconds, user and system, say how much work a stage did when other load on the
machine stretches its wall-clock seconds), and the pairwise precision / recall of the
resulting profiles against the truth: a pair of records is predicted when one profile
holds both their external ids (``external:crm_id``).
The target (issue): 1,000,000 records in under 120 s and 4 GB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from bench.match_generated import generate

STAGES = ("import", "resolve", "match", "build")
SOURCE = "crm"
#: Generated column -> CSV column (Segment's standard traits; dotted names nest).
CSV_COLUMNS = {
    "record_id": "id",
    "firstName": "firstName",
    "lastName": "lastName",
    "email": "email",
    "phone": "phone",
    "birthday": "birthday",
    "address_street": "address.street",
    "address_city": "address.city",
    "address_postalCode": "address.postalCode",
    "address_state": "address.state",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(_stage(args.stage, args.folder)))
        return
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.records, args.keep)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(args.records, Path(tmp))


def run(records: int, folder: Path) -> dict[str, Any]:
    started = time.perf_counter()
    table, truth = generate(records)
    table = table.rename_columns([CSV_COLUMNS[c] for c in table.column_names])
    pacsv.write_csv(table, folder / "customers.csv")
    pq.write_table(pa.table({"a": [a for a, _ in truth], "b": [b for _, b in truth]}), folder / "truth.parquet")
    print(
        f"generated {table.num_rows:,} records, {len(truth):,} true pairs in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    del table, truth
    store = folder / "patron.duckdb"
    for leftover in (store, store.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    results: dict[str, Any] = {"records": records, "stages": {}}
    total = 0.0
    peak = 0.0
    for stage in STAGES:
        out = subprocess.run(
            [sys.executable, "-m", "bench.pipeline_customers", "--stage", stage, "--folder", str(folder)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        results["stages"][stage] = figures
        total += figures["seconds"]
        peak = max(peak, figures["peak_mib"])
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in figures.get("parts", {}).items())
        print(
            f"{stage:8s} {figures['seconds']:7.1f} s  cpu {figures['cpu_s']:6.1f} s  peak {figures['peak_mib']:7,.0f} MiB"
            + (f"  ({parts})" if parts else "")
            + (f"  {figures['note']}" if figures.get("note") else ""),
            flush=True,
        )
    results["seconds"] = round(total, 1)
    results["peak_mib"] = round(peak)
    print(f"total    {total:7.1f} s  peak {peak:7,.0f} MiB  (target: 120 s, 4,096 MiB)")
    idle = _idle_share()
    if idle < 0.85:
        print(f"warning: the CPU was only {idle:.0%} idle after the run: other load skews the figures (cpu is this run's own)")
    results["quality"] = quality(folder)
    for kind, scores in results["quality"].items():
        print(f"{kind:8s} precision {scores['precision']:.4f} recall {scores['recall']:.4f} F1 {scores['f1']:.4f}")
    return results


def _stage(stage: str, folder: Path) -> dict[str, Any]:
    """Run one stage on the store in ``folder`` (in this process); its seconds and peak memory."""
    from patron.config import Settings
    from patron.workspace import Workspace

    parts: dict[str, float] = {}
    note = ""
    with _timed_parts(parts) as patch:
        settings = Settings().with_store(folder / "patron.duckdb")
        started = time.perf_counter()
        with Workspace(settings) as ws:
            if stage == "import":
                report = ws.imports.customers(folder / "customers.csv", id_column="id", source_id=SOURCE)
                note = f"read {report.read:,}, stored {report.stored:,}, rejected {report.rejected:,}"
            elif stage == "resolve":
                resolved = ws.identity.resolve()
                note = f"{resolved.identifiers:,} identifiers in {resolved.profiles:,} profiles"
            elif stage == "match":
                from patron.identity.matching import MatchSettings, ProbabilisticMatcher
                from patron.profiles import service

                patch(ws.profiles, "build", "build profiles")
                patch(service, "match_records", "match records")
                patch(ProbabilisticMatcher, "match", "matcher")
                patch(ws.identity, "add_probable", "add probable links")
                match_settings = MatchSettings(
                    match_threshold=ws.settings.identity_match_threshold,
                    review_threshold=ws.settings.identity_review_threshold,
                )
                matched = ws.profiles.match(list(ws.settings.identity_match_on), match_settings)
                note = (
                    f"{matched.records:,} records, {matched.matched_pairs:,} matched, {matched.review_pairs:,} review; "
                    f"profiles {matched.profiles_before:,} -> {matched.profiles_after:,}"
                )
            else:
                patch(ws.identity, "resolve", "resolve")
                built = ws.profiles.build()
                note = f"{built.profiles:,} profiles"
        seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    return {"seconds": round(seconds, 2), "cpu_s": round(cpu, 1), "peak_mib": round(usage.ru_maxrss / 1024), "parts": parts, "note": note}


@contextmanager
def _timed_parts(parts: dict[str, float]) -> Iterator[Callable[[Any, str, str], None]]:
    """``patch(owner, attribute, label)`` times every call of ``owner.attribute`` into ``parts``
    (for the rest of this process: a stage process ends after its stage)."""

    def patch(owner: Any, attribute: str, label: str) -> None:
        original = vars(owner)[attribute] if isinstance(owner, type) else getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                parts[label] = round(parts.get(label, 0.0) + time.perf_counter() - started, 2)

        setattr(owner, attribute, timed)

    yield patch


def _idle_share() -> float:
    from bench.__main__ import cpu_idle_share

    return cpu_idle_share()


def quality(folder: Path) -> dict[str, dict[str, float]]:
    """Pairwise scores of the profiles: a pair is predicted when its two records share one."""
    import duckdb

    con = duckdb.connect(str(folder / "patron.duckdb"), read_only=True)
    try:
        con.execute(f"SET threads = 2; CREATE TEMP TABLE truth AS SELECT * FROM '{folder / 'truth.parquet'}'")
        con.execute(
            "CREATE TEMP TABLE member AS SELECT identifier_value AS record_id, profile_id "
            f"FROM identity_identifiers WHERE identifier_type = 'external:{SOURCE}_id'"
        )
        predicted = con.execute(
            "SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n FROM member GROUP BY profile_id)"
        ).fetchone()
        true_pairs, found = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE a.profile_id = b.profile_id) FROM truth t "
            "LEFT JOIN member a ON a.record_id = t.a LEFT JOIN member b ON b.record_id = t.b"
        ).fetchone() or (0, 0)
        records, profiles = con.execute("SELECT count(*), count(DISTINCT profile_id) FROM member").fetchone() or (0, 0)
    finally:
        con.close()
    precision = found / predicted[0] if predicted and predicted[0] else 1.0
    recall = found / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"{records:,} records in {profiles:,} profiles; {found:,} of {true_pairs:,} true pairs together, "
          f"{predicted[0] if predicted else 0:,} pairs predicted")
    return {"pairs": {"precision": precision, "recall": recall, "f1": f1}}


if __name__ == "__main__":
    main()
