"""Benchmark 2: single-message /v1/track at a fixed rate (open loop), latency percentiles.

The load is paced, not closed-loop: every connection has a schedule of send times, and
each request's latency is counted from its scheduled time, so a slow answer that delays
the next send shows up in the figures instead of lowering the offered load (no
coordinated omission). Several client processes, each with a few keep-alive connections.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
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

_MARK = "@@MID@@"


def _connection_loop(
    port: int, auth: str, prefix: bytes, template: list[bytes], start_at: float, interval: float, count: int,
    out: dict[str, Any],
) -> None:
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    poster = KeepAlivePoster(port, headers, timeout=60)
    latencies: list[float] = []
    service: list[float] = []
    dues: list[float] = []
    errors = 0
    acknowledged = 0
    for n in range(count):
        due = start_at + n * interval
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        body = template[0] + prefix + b"%09d" % n + template[1]
        began = time.time()
        answer = poster.post("/v1/track", body)
        done = time.time()
        if answer is None or answer[0] != 200:
            errors += 1
            continue
        payload = answer[1]
        acknowledged += orjson.loads(payload)["accepted"]
        latencies.append(done - due)
        service.append(done - began)
        dues.append(due)
    poster.close()
    out.update(latencies=latencies, service=service, dues=dues, errors=errors, acknowledged=acknowledged, last=time.time())


def _client(args: tuple[int, str, int, str, float, float, int, int]) -> dict[str, Any]:
    index, run, port, auth, start_at, rate, connections, count = args
    rng = random.Random(index)
    message = track_message("x", 0, rng, datetime.now(UTC))
    message["messageId"] = _MARK
    template = orjson.dumps(message).split(_MARK.encode())
    interval = connections / rate  # per connection
    outs: list[dict[str, Any]] = [{} for _ in range(connections)]
    threads = [
        threading.Thread(
            target=_connection_loop,
            args=(
                port, auth, f"track-{run}-{index:02d}-{c:02d}-".encode(), template,
                # Stagger the connections so the process's requests are evenly spaced.
                start_at + c * interval / connections, interval, count, outs[c],
            ),
        )
        for c in range(connections)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "latencies": [x for o in outs for x in o["latencies"]],
        "service": [x for o in outs for x in o["service"]],
        "dues": [x for o in outs for x in o["dues"]],
        "errors": sum(o["errors"] for o in outs),
        "acknowledged": sum(o["acknowledged"] for o in outs),
        "last": max(o["last"] for o in outs),
        "peak_rss_mib": own_peak_rss_mib(),
        "cpu_s": own_cpu_s(),
    }


def run(
    duration: float = 60.0,
    rate: float = 1000.0,
    processes: int = 4,
    connections: int = 16,
    warmup: float = 5.0,
    profile: bool = False,
) -> dict[str, Any]:
    """``warmup`` seconds at the same rate come first and are reported apart: the first
    requests of a fresh server pay for lazy imports and the first writes."""
    workdir = fresh_dir("track")
    server = Server(workdir).start()
    spy = server.profile(workdir / "profile.txt", warmup + duration) if profile else None
    run_id = uuid.uuid4().hex[:8]
    per_process = rate / processes
    per_connection_count = int((warmup + duration) * per_process / connections)
    start_at = time.time() + 3.0
    ctx = multiprocessing.get_context("spawn")
    try:
        with ctx.Pool(processes) as pool:
            pending = pool.map_async(
                _client,
                [
                    (
                        i, run_id, server.port, basic_auth(server.key),
                        start_at + i / rate,  # interleave the processes too
                        per_process, connections, per_connection_count,
                    )
                    for i in range(processes)
                ],
            )
            time.sleep(max(0.0, start_at + warmup - time.time()))
            meter = CpuMeter(server.pid)
            results = pending.get()
            cpu = meter.finish(sum(r["cpu_s"] for r in results))
    finally:
        if spy is not None:
            spy.wait()
        returncode = server.stop()
    measured_from = start_at + warmup
    latencies = sorted(
        x for r in results for due, x in zip(r["dues"], r["latencies"], strict=True) if due >= measured_from
    )
    warm = sorted(
        x for r in results for due, x in zip(r["dues"], r["latencies"], strict=True) if due < measured_from
    )
    service = sorted(
        x for r in results for due, x in zip(r["dues"], r["service"], strict=True) if due >= measured_from
    )
    # p99 of each 5-second window, to show whether the tail is steady or a few stalls.
    windows: dict[int, list[float]] = {}
    for r in results:
        for due, latency in zip(r["dues"], r["latencies"], strict=True):
            if due >= measured_from:
                windows.setdefault(int((due - measured_from) // 5), []).append(latency)
    window_p99 = [round(percentile(sorted(v), 99) * 1000, 1) for _, v in sorted(windows.items())]
    elapsed = max(r["last"] for r in results) - measured_from
    acknowledged = sum(r["acknowledged"] for r in results)
    stored = stored_event_count(server.store)

    def ms(values: list[float], q: float) -> float:
        return round(percentile(values, q) * 1000, 2)

    return {
        "benchmark": "single-message /v1/track, open loop (figures after the warm-up)",
        "target_rate": rate,
        "duration_s": round(elapsed, 2),
        "connections": processes * connections,
        "requests": len(latencies),
        "achieved_rate": round(len(latencies) / elapsed, 1),
        "errors": sum(r["errors"] for r in results),
        "events_acknowledged": acknowledged,
        "events_stored": stored,
        "durable": stored == acknowledged,
        "latency_ms": {
            "p50": ms(latencies, 50),
            "p90": ms(latencies, 90),
            "p99": ms(latencies, 99),
            "max": round(latencies[-1] * 1000, 2) if latencies else None,
        },
        "p99_ms_per_5s_window": window_p99,
        "warmup": {
            "seconds": warmup,
            "requests": len(warm),
            "p50_ms": ms(warm, 50),
            "p99_ms": ms(warm, 99),
            "max_ms": round(warm[-1] * 1000, 2) if warm else None,
        },
        "service_time_ms": {"p50": ms(service, 50), "p99": ms(service, 99)},
        "server_peak_rss_mib": round(server.peak_rss_kib / 1024, 1),
        "client_peak_rss_mib": round(max(r["peak_rss_mib"] for r in results), 1),
        "store_mib": round(server.store_bytes() / 1024**2, 1),
        "cpu": cpu,
        "server_exit_code": returncode,
    }
