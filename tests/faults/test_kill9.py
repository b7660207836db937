"""`kill -9` of `patron serve` under load loses no acknowledged message and stores none twice.

Several client threads post /v1/batch with unique messageIds as fast as they can and
record each batch the server answered 200. The server is killed with SIGKILL in the
middle of that load (no shutdown code runs, the writer may be mid-commit), restarted on
the same store, and loaded and killed twice more. Afterwards:

* every messageId acknowledged with 200 is in the store, exactly once;
* nothing is in the store that was never sent;
* re-sending the acknowledged batches is answered 200 with every message a duplicate.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from tests.faults.support import batch_body, stored_ids, track
from tests.servers import PatronServer

CLIENTS = 6
PER_BATCH = 100
KILL_AFTER_ACKED = 3_000  # messages acknowledged in this round before the SIGKILL


@dataclass
class Load:
    """What the clients sent and what the server acknowledged."""

    acked: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)  # in flight when the server died
    answers: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)


def _client(url: str, key: str, name: str, load: Load, stop: threading.Event) -> None:
    n = 0
    with httpx.Client(auth=(key, ""), timeout=10) as http:
        while not stop.is_set():
            ids = [f"{name}-{n}-{i}" for i in range(PER_BATCH)]
            n += 1
            body = batch_body([track(m, user=name, pad=700) for m in ids])
            try:
                response = http.post(
                    f"{url}/v1/batch", content=body, headers={"content-type": "application/json"}
                )
            except httpx.TransportError:
                with load.lock:
                    load.unanswered.extend(ids)
                return  # the server is gone
            with load.lock:
                load.answers[response.status_code] += 1
                if response.status_code == 200:
                    assert response.json()["accepted"] == PER_BATCH
                    load.acked.extend(ids)
                else:
                    load.unanswered.extend(ids)


def _load_then_kill(server: PatronServer, key: str, round_: int, load: Load) -> None:
    stop = threading.Event()
    threads = [
        threading.Thread(target=_client, args=(server.url, key, f"r{round_}c{c}", load, stop))
        for c in range(CLIENTS)
    ]
    start = load.acked_count()
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while load.acked_count() - start < KILL_AFTER_ACKED:
        assert time.monotonic() < deadline, f"too slow: {load.acked_count() - start} acknowledged"
        time.sleep(0.01)
    time.sleep(random.uniform(0, 0.05))  # land anywhere in the writer's cycle
    server.kill()  # SIGKILL while the clients are still posting
    stop.set()
    for thread in threads:
        thread.join(30)
    assert server.process is not None and server.process.returncode == -9


@pytest.mark.slow
def test_sigkill_under_load_keeps_every_acknowledged_message(store_path: Path, write_key: str) -> None:
    load = Load()
    for round_ in range(3):
        server = PatronServer(store_path).start()
        _load_then_kill(server, write_key, round_, load)
    assert load.answers[200] * PER_BATCH == len(load.acked)
    assert set(load.answers) <= {200}, load.answers  # no 5xx while healthy
    assert load.unanswered, "the kill should have cut some requests off"

    acked = set(load.acked)
    assert len(acked) == len(load.acked)

    # A restarted server answers a re-send of acknowledged batches as duplicates.
    with PatronServer(store_path) as server, httpx.Client(auth=(write_key, ""), timeout=30) as http:
        health = http.get(f"{server.url}/health").json()
        assert health["status"] == "ok"
        resend = load.acked[:: max(1, len(load.acked) // 1000)]  # a spread of ~1,000
        for i in range(0, len(resend), PER_BATCH):
            chunk = resend[i : i + PER_BATCH]
            answer = http.post(
                f"{server.url}/v1/batch",
                content=batch_body([track(m) for m in chunk]),
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 200
            assert orjson.loads(answer.content) == {
                "success": True,
                "accepted": 0,
                "duplicates": len(chunk),
                "rejected": [],
            }

    stored = stored_ids(store_path)
    missing = acked - set(stored)
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:3]}"
    assert max(stored.values()) == 1
    assert set(stored) <= acked | set(load.unanswered), "stored something never sent"
