"""Benchmark 1: batched ingestion through /v1/batch, every acknowledged event durable.

Several client processes (closed loop, one keep-alive connection each) post batches of
100 track messages of about 1 KB against a real `patron serve` on a fresh store, on the
same machine. Bodies are built from pre-serialised templates; only the ``messageId``s are
filled in per request (unique across the run), so the load generator stays cheap. After
the run the server is stopped and the stored events are counted with `patron events
count`: the count must equal the number of events the server acknowledged with a 200.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from bench.common import (
    CpuMeter,
    KeepAlivePoster,
    Server,
    basic_auth,
    fresh_dir,
    own_cpu_s,
    own_peak_rss_mib,
    percentile,
    stored_event_count,
)
from bench.messages import track_message

BATCH = 100
TEMPLATES = 16
_MARK = "@@MID@@"


def _templates(seed: int) -> list[list[bytes]]:
    """Batch bodies split around each message's ``messageId`` placeholder."""
    rng = random.Random(seed)
    out = []
    for _ in range(TEMPLATES):
        now = datetime.now(UTC)
        messages = [track_message("x", 0, rng, now) for _ in range(BATCH)]
        for message in messages:
            message["messageId"] = _MARK
        sent_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = orjson.dumps({"batch": messages, "sentAt": sent_at})
        out.append(body.split(_MARK.encode()))
    return out


def _client(args: tuple[int, str, int, str, float, float]) -> dict[str, Any]:
    """One load-generating process: posts batches until ``stop_at`` (wall clock)."""
    index, run, port, auth, start_at, stop_at = args
    templates = _templates(seed=index)
    prefix = f"bench-{run}-{index:02d}-".encode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    poster = KeepAlivePoster(port, headers, timeout=120)
    latencies: list[float] = []
    finished: list[float] = []
    acknowledged = duplicates = rejected = errors = 0
    counter = 0
    body_bytes = 0
    time.sleep(max(0.0, start_at - time.time()))
    while time.time() < stop_at:
        parts = templates[counter // BATCH % TEMPLATES]
        pieces = [parts[0]]
        for i in range(BATCH):
            pieces.append(prefix + b"%010d" % (counter + i))
            pieces.append(parts[i + 1])
        body = b"".join(pieces)
        body_bytes += len(body)
        counter += BATCH
        began = time.perf_counter()
        reply = poster.post("/v1/batch", body)
        if reply is None:
            errors += 1
            continue
        latencies.append(time.perf_counter() - began)
        finished.append(time.time())
        if reply[0] != 200:
            errors += 1
            continue
        answer = orjson.loads(reply[1])
        acknowledged += answer["accepted"] + answer["duplicates"]
        duplicates += answer["duplicates"]
        rejected += len(answer["rejected"])
    poster.close()
    return {
        "latencies": latencies,
        "finished": finished,
        "acknowledged": acknowledged,
        "duplicates": duplicates,
        "rejected": rejected,
        "errors": errors,
        "body_bytes": body_bytes,
        "peak_rss_mib": own_peak_rss_mib(),
        "cpu_s": own_cpu_s(),
    }


def run(duration: float = 60.0, clients: int = 10, profile: bool = False) -> dict[str, Any]:
    workdir = fresh_dir("ingest")
    server = Server(workdir).start()
    spy = server.profile(workdir / "profile.txt", duration) if profile else None
    run_id = uuid.uuid4().hex[:8]
    auth = basic_auth(server.key)
    start_at = time.time() + 3.0  # time for every client to build its templates
    stop_at = start_at + duration
    ctx = multiprocessing.get_context("spawn")
    try:
        with ctx.Pool(clients) as pool:
            pending = pool.map_async(
                _client, [(i, run_id, server.port, auth, start_at, stop_at) for i in range(clients)]
            )
            time.sleep(max(0.0, start_at - time.time()))
            meter = CpuMeter(server.pid)
            results = pending.get()
            cpu = meter.finish(sum(r["cpu_s"] for r in results))
    finally:
        if spy is not None:
            spy.wait()
        returncode = server.stop()
    elapsed = max(t for r in results for t in r["finished"]) - start_at
    acknowledged = sum(r["acknowledged"] for r in results)
    requests = sum(len(r["latencies"]) for r in results)
    latencies = sorted(x for r in results for x in r["latencies"])
    stored = stored_event_count(server.store)
    # Throughput in each whole second of the run, to show it is sustained.
    per_second: dict[int, int] = {}
    for r in results:
        for t in r["finished"]:
            per_second[int(t - start_at)] = per_second.get(int(t - start_at), 0) + BATCH
    whole = [per_second.get(s, 0) for s in range(int(elapsed))]
    return {
        "benchmark": "batch ingestion (/v1/batch, 100 x ~1 KB messages per request)",
        "duration_s": round(elapsed, 2),
        "clients": clients,
        "requests": requests,
        "events_acknowledged": acknowledged,
        "events_stored": stored,
        "durable": stored == acknowledged,
        "duplicates": sum(r["duplicates"] for r in results),
        "rejected": sum(r["rejected"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "events_per_s": round(acknowledged / elapsed),
        "requests_per_s": round(requests / elapsed, 1),
        "slowest_second_events": min(whole) if whole else None,
        "fastest_second_events": max(whole) if whole else None,
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 1),
            "p90": round(percentile(latencies, 90) * 1000, 1),
            "p99": round(percentile(latencies, 99) * 1000, 1),
            "max": round(latencies[-1] * 1000, 1) if latencies else None,
        },
        "mean_body_kib": round(sum(r["body_bytes"] for r in results) / max(requests, 1) / 1024, 1),
        "server_peak_rss_mib": round(server.peak_rss_kib / 1024, 1),
        "client_peak_rss_mib": round(max(r["peak_rss_mib"] for r in results), 1),
        "store_mib": round(server.store_bytes() / 1024**2, 1),
        "cpu": {**cpu, "server_cpu_us_per_event": round(cpu["server_cpu_s"] / max(acknowledged, 1) * 1e6, 1)},
        "server_exit_code": returncode,
    }
