"""Benchmark 3: `patron import orders` of a 1,000,000-row CSV, timed as a real CLI run.

The CSV comes from the package's deterministic generator (``synthetic_orders``; order
lines, 2.5 per order on average). The import runs as a subprocess on a fresh store; its
wall time and peak RSS (``wait4`` rusage of that process) are reported, and the stored
events are counted afterwards. A second import of the same file shows the dedupe path.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bench.common import fresh_dir, patron_command, stored_event_count


def write_csv(path: Path, rows: int, seed: int = 7) -> dict[str, Any]:
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    try:
        from patron.demo.synthetic import synthetic_orders
    except ImportError:  # generator not present: a plain one, one row per order
        table = _plain_orders(rows, seed)
        source = "bench fallback generator"
    else:
        table = synthetic_orders(rows, seed)
        source = f"patron.demo.synthetic.synthetic_orders({rows}, seed={seed})"
    pacsv.write_csv(table, path)
    return {
        "generator": source,
        "columns": table.column_names,
        "csv_mib": round(path.stat().st_size / 1024**2, 1),
        "generate_s": round(time.perf_counter() - started, 2),
    }


def _plain_orders(rows: int, seed: int) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    seconds = rng.integers(0, 365 * 86_400, size=rows)
    base = np.datetime64("2024-01-01T00:00:00", "s")
    return pa.table(
        {
            "order_id": pa.array([f"O-{i:08d}" for i in range(rows)]),
            "customer_id": pc.cast(pa.array(rng.integers(0, rows // 10 + 1, size=rows)), pa.string()),
            "timestamp": pa.array(base + seconds.astype("timedelta64[s]")),
            "revenue": pa.array(np.round(rng.uniform(5, 500, size=rows), 2)),
            "currency": pa.array(["USD"] * rows),
        }
    )


def _run_measured(args: list[str]) -> tuple[float, int, int, str, str]:
    """Run a CLI command: (seconds, exit code, that process's peak RSS in KiB from ``wait4``, stdout, stderr)."""
    started = time.perf_counter()
    read_out, write_out = os.pipe()
    read_err, write_err = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.dup2(write_out, 1)
        os.dup2(write_err, 2)
        os.close(read_out)
        os.close(read_err)
        command = patron_command(*args)
        os.execv(command[0], command)
    os.close(write_out)
    os.close(write_err)
    chunks_out: list[bytes] = []
    chunks_err: list[bytes] = []
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(read_out, selectors.EVENT_READ, chunks_out)
    selector.register(read_err, selectors.EVENT_READ, chunks_err)
    open_fds = 2
    while open_fds:
        for key, _ in selector.select():
            data = os.read(key.fd, 65536)
            if data:
                key.data.append(data)
            else:
                selector.unregister(key.fd)
                os.close(key.fd)
                open_fds -= 1
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    return elapsed, code, usage.ru_maxrss, b"".join(chunks_out).decode(), b"".join(chunks_err).decode()


def run(rows: int = 1_000_000) -> dict[str, Any]:
    workdir = fresh_dir("orders")
    csv_path = workdir / "orders.csv"
    generated = write_csv(csv_path, rows)
    store = workdir / "patron.duckdb"
    args = ["import", "orders", str(csv_path), "--store", str(store), "--json"]
    elapsed, code, rss_kib, out, err = _run_measured(args)
    if code != 0:
        return {"benchmark": f"patron import orders ({rows:,} rows)", "error": (err or out).strip()[-2000:], **generated}
    report = _json_tail(out)
    stored = stored_event_count(store)
    again_s, again_code, again_rss, again_out, again_err = _run_measured(args)
    again = _json_tail(again_out) if again_code == 0 else {"error": again_err.strip()[-500:]}
    return {
        "benchmark": f"patron import orders ({rows:,} CSV rows)",
        **generated,
        "import_s": round(elapsed, 2),
        "rows_per_s": round(rows / elapsed),
        "events_stored": stored,
        "import_report": report,
        "peak_rss_mib": round(rss_kib / 1024, 1),
        "reimport_s": round(again_s, 2),
        "reimport_report": again,
        "reimport_peak_rss_mib": round(again_rss / 1024, 1),
        "store_mib": round(sum(p.stat().st_size for p in workdir.glob("patron.duckdb*")) / 1024**2, 1),
    }


def _json_tail(text: str) -> Any:
    """The JSON document the CLI printed (progress output, if any, comes before it)."""
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else text.strip()
    except json.JSONDecodeError:
        return text.strip()[-1000:]
